"""The data-quality gate training asks before a run, and a manager's written override."""

import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.jobs import JobStatus
from apps.projects.permissions import require_role

from .. import assertions as checks
from ..models import GateOverride, ProfileRun

log = logging.getLogger(__name__)

# The gate ------------------------------------------------------------------------------------


@dataclass
class GateResult:
    passed: bool
    failures: list = field(default_factory=list)
    profile_run: ProfileRun | None = None
    warnings: list = field(default_factory=list)
    override: GateOverride | None = None
    running: ProfileRun | None = None  # a profile of this version still queued or running

    @property
    def state(self):
        """overridden | passes | running | refused: "running" while a profile that may decide it runs."""
        if self.passed:
            return "overridden" if self.override else "passes"
        return "running" if self.running is not None else "refused"

    @property
    def message(self):
        if self.passed and self.override:
            return f"Passed by override of {self.override.user or 'someone'}: {self.override.reason}" + (
                f" (overriding: {'; '.join(self.failures)})" if self.failures else ""
            )
        if self.passed:
            return "Passed: every blocking data-quality check holds."
        if self.running is not None:
            return (
                f"Waiting for the data-quality gate: profile run #{self.running.pk} of this version is "
                f"{self.running.status}; train once it has finished and passed."
            )
        return "Refused by the data-quality gate: " + "; ".join(self.failures)


def latest_succeeded_run(version):
    return (
        ProfileRun.objects.filter(version=version, status=JobStatus.SUCCEEDED).order_by("-finished_at", "-id").first()
    )


def gate_check(version) -> GateResult:
    """May ``version`` be trained on? Refused when its latest succeeded profile has failed blocking
    assertions, or when it has no succeeded profile, unless a data scientist overrode the gate."""
    run = latest_succeeded_run(version)
    override = GateOverride.objects.filter(version=version).select_related("user").first()
    running = ProfileRun.objects.filter(version=version, status__in=JobStatus.ACTIVE).order_by("-id").first()
    if run is None:
        latest = ProfileRun.objects.filter(version=version).first()
        why = f" (the latest is {latest.status})" if latest else ""
        failures = [
            f"no_profile: version v{version.number} has no succeeded profile{why}; "
            + ("wait for it to finish." if running else "profile it first.")
        ]
        return GateResult(
            passed=override is not None, failures=failures, profile_run=None, override=override, running=running
        )
    failures, warnings = [], []
    for r in run.results.filter(passed=False):
        text = f"{r.check_name}: {r.title} — {r.message} (measured {checks._fmt(r.measured)}, bound {r.bound})"
        (failures if r.severity == "blocking" else warnings).append(text)
    return GateResult(
        passed=not failures or override is not None,
        failures=failures,
        profile_run=run,
        warnings=warnings,
        override=override if failures else None,
        running=running,
    )


@transaction.atomic
def gate_override(*, version, user, reason):
    """A data scientist lets ``version`` through the gate despite its failures; ``reason`` is required
    and the override is audited."""
    require_role(user, version.project, Role.DATA_SCIENTIST)
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise ValidationError(
            {"reason": "Write why this version may be trained on despite failed checks (at least 10 characters)."}
        )
    result = gate_check(version)
    if result.passed and result.override is None and not result.failures:
        raise ValidationError({"version": f"Version v{version.number} passes the gate; there is nothing to override."})
    ov = GateOverride.objects.create(
        version=version, run=result.profile_run, user=user, reason=reason, failures=result.failures
    )
    audit_record(
        actor=user,
        action="profiling.gate_override",
        project=version.project,
        obj=version,
        reason=reason,
        data={"failures": result.failures, "run": result.profile_run.pk if result.profile_run else None},
    )
    return ov
