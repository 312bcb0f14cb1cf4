"""Profiling writes: start/execute/cancel a profile run, replace the project's assertions, the gate.

Names other apps call (keep them): ``profile_run_start(*, version, user)`` (datasets, when a version
becomes ready), ``gate_check(version) -> GateResult`` and ``gate_override(*, version, user, reason)``
(training, before it launches a run).
"""

import logging
import time
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.jobs import JobStatus, dispatch, launches_jobs, step_delay, transition, transition_or_raise
from apps.core.models import AuditEvent
from apps.core.storage import blob_read
from apps.datasets.models import VersionItem, VersionStatus
from apps.labeling.agreement import agreement_summary, group_labels
from apps.labeling.models import Annotation
from apps.projects.permissions import require_role

from . import assertions as checks
from . import imagestats
from .models import AssertionResult, AssertionRule, GateOverride, ItemStats, ProfileRun

log = logging.getLogger(__name__)

BATCH = 64  # at most this many images measured between two saves of progress (and heartbeats)
HEARTBEAT_SECONDS = 3  # and at least this often; each save is one commit
OUTLIERS = 8
SAMPLES_PER_CLASS = 12
MAX_GROUP_ITEMS = 40

# Used until a data scientist saves the project's own document (see assertion_rules_for).
DEFAULT_DOCUMENT = {
    "assertions": [
        {"check": "no_unreadable", "severity": "blocking", "max": 0},
        {"check": "no_cross_split_duplicates", "severity": "blocking", "near": False},
        {"check": "no_cross_split_duplicates", "severity": "warning", "near": True},
        {"check": "label_completeness", "severity": "blocking", "min": 1.0},
        {"check": "min_images_per_class", "severity": "blocking", "min": 1},
    ]
}


# Labeler agreement hook --------------------------------------------------------------------------


def agreement_for_version(version):
    """Labeler agreement (kappa) over the version's items: labeling's annotations of those items fed to
    its ``agreement_summary(group_labels(rows), classes)`` (Cohen's kappa for two labelers, Fleiss' for
    more), the way its own agreement page counts them. None when nothing is measurable (then the
    ``agreement`` check fails with a clear message and suggestions leave it out)."""
    try:
        rows = Annotation.objects.filter(
            item__version_entries__version=version, status__in=("submitted", "accepted", "rejected")
        ).values_list("item_id", "user__username", "label_class__name")
        value = agreement_summary(group_labels(rows), list(version.classes or []))
    except Exception:  # a bug over there must not fail a profile
        log.exception("labeling agreement over annotations failed")
        return None
    if isinstance(value, dict):
        value = next((value[k] for k in ("overall", "value", "kappa") if value.get(k) is not None), None)
    return float(value) if isinstance(value, (int, float)) else None


# Runs --------------------------------------------------------------------------------------------


@launches_jobs
def profile_run_start(*, version, user=None):
    """Queue a profile of ``version`` (ready versions only). An active run of the version is
    returned instead of starting a second one."""
    if version.status != VersionStatus.READY:
        raise ValidationError(
            {"version": f"Version v{version.number} is {version.status}; only a ready version can be profiled."}
        )
    existing = ProfileRun.objects.filter(version=version, status__in=JobStatus.ACTIVE).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            run = ProfileRun.objects.create(
                project=version.project,
                version=version,
                created_by=user if getattr(user, "is_authenticated", False) else None,
                total=version.entries.count(),
            )
            audit_record(
                actor=user,
                action="profiling.run_start",
                project=version.project,
                obj=run,
                data={"version": version.number},
            )
            from .tasks import profile_run_execute

            dispatch(profile_run_execute, run.pk, job=run)
    except IntegrityError:  # a racing start won
        return ProfileRun.objects.get(version=version, status__in=JobStatus.ACTIVE)
    return run


def profile_run_cancel(*, run, user):
    require_role(user, run.project, Role.DATA_SCIENTIST)
    if not transition(ProfileRun, run.pk, JobStatus.ACTIVE, JobStatus.CANCELLED, finished_at=timezone.now()):
        run.refresh_from_db()
        raise ValidationError(
            {"status": f"Profile #{run.pk} is {run.status}; only a queued or running one can be cancelled."}
        )
    audit_record(actor=user, action="profiling.run_cancel", project=run.project, obj=run)
    run.refresh_from_db()
    return run


def _measure(entry):
    item = entry.item
    row = ItemStats(run_id=None, item_id=item.pk, split=entry.split, label=entry.label or "", sha256=item.sha256)
    try:
        data = blob_read(item.blob)
        s = imagestats.stats_from_bytes(data)
    except (imagestats.UnreadableImage, OSError) as exc:
        row.readable, row.error = False, str(exc)[:300]
        row.format, row.bytes = item.format, item.bytes
        return row
    for k in (
        "width",
        "height",
        "aspect",
        "mode",
        "channels",
        "format",
        "bytes",
        "brightness",
        "contrast",
        "sharpness",
        "entropy",
        "phash",
        "pixel_sha256",
    ):
        setattr(row, k, s[k])
    return row


def profile_run_execute(*, run_id):
    """Measure every image of the run's version, build the profile and run the assertions.

    Safe to retry: images measured by an earlier attempt of the same run are skipped.
    """
    run = ProfileRun.objects.select_related("version", "project").get(pk=run_id)
    if run.status == JobStatus.QUEUED:
        if not transition(
            ProfileRun,
            run.pk,
            JobStatus.QUEUED,
            JobStatus.RUNNING,
            started_at=timezone.now(),
            heartbeat_at=timezone.now(),
        ):
            return
    elif run.status != JobStatus.RUNNING:  # finished or cancelled meanwhile
        return
    try:
        done = set(ItemStats.objects.filter(run=run).values_list("item_id", flat=True))
        entries = list(VersionItem.objects.filter(version=run.version).select_related("item__blob").order_by("id"))
        ProfileRun.objects.filter(pk=run.pk).update(total=len(entries), processed=len(done))
        todo = [e for e in entries if e.item_id not in done]
        pending, processed, last_beat = [], len(done), time.monotonic()
        for entry in todo:
            step_delay()
            row = _measure(entry)
            row.run_id = run.pk
            pending.append(row)
            if len(pending) >= BATCH or time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                processed += len(pending)
                if not _save_batch(run, pending, processed):
                    return  # cancelled (or reaped): stop quietly
                pending, last_beat = [], time.monotonic()
        processed += len(pending)
        if not _save_batch(run, pending, processed):
            return
        profile = profile_build(run)
        with transaction.atomic():
            summary = _assertions_run(run, profile)
            transition_or_raise(
                ProfileRun,
                run.pk,
                JobStatus.RUNNING,
                JobStatus.SUCCEEDED,
                profile=profile,
                summary=summary,
                finished_at=timezone.now(),
                processed=processed,
            )
    except Exception as exc:
        log.exception("profile run %s failed", run_id)
        transition(
            ProfileRun,
            run.pk,
            JobStatus.RUNNING,
            JobStatus.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise


def _save_batch(run, rows, processed):
    if rows:
        ItemStats.objects.bulk_create(rows, ignore_conflicts=True)
    n = ProfileRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
        processed=processed, heartbeat_at=timezone.now()
    )
    return n == 1


# The profile -----------------------------------------------------------------------------------


class _Groups:
    """Union-find over row indices."""

    def __init__(self, n):
        self.parent = list(range(n))

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self):
        out = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return [g for g in out.values() if len(g) > 1]


def _ref(row, name_of, value=None):
    d = {"item": row.item_id, "split": row.split, "label": row.label, "name": name_of.get(row.item_id, "")}
    if value is not None:
        d["value"] = round(float(value), 4)
    return d


def _duplicates(rows, name_of):
    readable = [r for r in rows if r.readable]
    exact = _Groups(len(readable))
    first = {}
    for i, r in enumerate(readable):
        for key in (("f", r.sha256), ("p", r.pixel_sha256)):
            if key[1]:
                if key in first:
                    exact.union(first[key], i)
                else:
                    first[key] = i
    exact_groups = exact.groups()
    near = _Groups(len(readable))
    dist = {}
    for i, j, d in imagestats.near_duplicate_pairs([r.phash for r in readable]):
        if exact.find(i) == exact.find(j):
            continue
        near.union(i, j)
        dist[(i, j)] = d
    near_groups = near.groups()

    def describe(kind, idx):
        splits = sorted({readable[i].split for i in idx})
        labels = sorted({readable[i].label for i in idx})
        d = {
            "kind": kind,
            "size": len(idx),
            "splits": splits,
            "labels": labels,
            "cross_split": len(splits) > 1,
            "label_conflict": len(labels) > 1,
            "items": [_ref(readable[i], name_of) for i in idx[:MAX_GROUP_ITEMS]],
        }
        if kind == "near":
            members = set(idx)
            d["max_distance"] = max((v for (a, b), v in dist.items() if a in members and b in members), default=0)
        return d

    ex = [describe("exact", g) for g in exact_groups]
    nr = [describe("near", g) for g in near_groups]
    key = lambda g: (not g["cross_split"], -g["size"])  # noqa: E731  leakage first
    return {
        "exact": sorted(ex, key=key),
        "near": sorted(nr, key=key),
        "max_distance_bits": imagestats.NEAR_DUPLICATE_BITS,
        "hash_bits": imagestats.PHASH_SIZE**2,
        "cross_split_exact": sum(g["cross_split"] for g in ex),
        "cross_split_near": sum(g["cross_split"] for g in nr),
        "exact_images": sum(g["size"] for g in ex) - len(ex),
        "near_groups": len(nr),
    }


def profile_build(run):
    """The compact profile of a run from its ItemStats: counts, fixed-bin histograms and quantiles per
    statistic for every class, split and split×class, categorical counts, duplicates, outliers,
    unreadable files, label completeness and agreement. No pixels."""
    version = run.version
    rows = list(ItemStats.objects.filter(run=run).order_by("item_id"))
    name_of = dict(VersionItem.objects.filter(version=version).values_list("item_id", "item__original_name"))
    classes = list(version.classes or sorted({r.label for r in rows if r.label}))
    splits = [s for s in checks.SPLITS if any(r.split == s for r in rows)]

    counts = {}
    for r in rows:
        counts.setdefault(r.split, {}).setdefault(r.label, 0)
        counts[r.split][r.label] += 1

    def keys_of(r):
        return ("all", f"class:{r.label}", f"split:{r.split}", f"{r.split}/{r.label}")

    members = {}
    for r in rows:
        if r.readable:
            for k in keys_of(r):
                members.setdefault(k, []).append(r)
    groups, categorical = {}, {}
    for k, rs in members.items():
        groups[k] = {
            stat: imagestats.summary(stat, [getattr(r, stat) for r in rs]) for stat in imagestats.NUMERIC_STATS
        }
        cat = {"mode": {}, "channels": {}, "format": {}, "size": {}}
        for r in rs:
            for name, val in (
                ("mode", r.mode),
                ("channels", str(r.channels)),
                ("format", r.format),
                ("size", f"{r.width}x{r.height}"),
            ):
                cat[name][val] = cat[name].get(val, 0) + 1
        categorical[k] = cat

    readable = [r for r in rows if r.readable]
    outliers = {
        "darkest": [_ref(r, name_of, r.brightness) for r in sorted(readable, key=lambda r: r.brightness)[:OUTLIERS]],
        "brightest": [_ref(r, name_of, r.brightness) for r in sorted(readable, key=lambda r: -r.brightness)[:OUTLIERS]],
        "blurriest": [_ref(r, name_of, r.sharpness) for r in sorted(readable, key=lambda r: r.sharpness)[:OUTLIERS]],
        "smallest": [
            {**_ref(r, name_of, r.width * r.height), "size": f"{r.width}×{r.height}"}
            for r in sorted(readable, key=lambda r: (r.width * r.height, r.bytes or 0))[:OUTLIERS]
        ],
    }
    samples = {}
    for c in classes:
        rs = [r for r in readable if r.label == c]
        step = max(1, len(rs) // SAMPLES_PER_CLASS)
        samples[c] = [_ref(r, name_of) for r in rs[::step][:SAMPLES_PER_CLASS]]

    valid = set(classes)
    labeled = sum(1 for r in rows if r.label and (not valid or r.label in valid))
    return {
        "schema": 1,
        "version": {"id": version.pk, "number": version.number},
        "bins": imagestats.BINS,
        "log_scale": sorted(imagestats.LOG_SCALE),
        "quantile_levels": list(imagestats.QUANTILE_LEVELS),
        "phash": {"size": imagestats.PHASH_SIZE, "near_bits": imagestats.NEAR_DUPLICATE_BITS},
        "classes": classes,
        "splits": splits,
        "total": len(rows),
        "readable": len(readable),
        "counts": counts,
        "groups": groups,
        "categorical": categorical,
        "duplicates": _duplicates(rows, name_of),
        "unreadable": [{**_ref(r, name_of), "error": r.error} for r in rows if not r.readable],
        "label_completeness": (labeled / len(rows)) if rows else None,
        "unlabeled": len(rows) - labeled,
        "agreement": agreement_for_version(version),
        "outliers": outliers,
        "samples": samples,
    }


# Assertions ------------------------------------------------------------------------------------


def assertion_rules_for(project):
    """The project's rules as [{"check", "severity", "params"}]; the defaults until someone saves."""
    rules = list(AssertionRule.objects.filter(project=project))
    if rules:
        return [{"check": r.check_name, "severity": r.severity, "params": r.params} for r in rules]
    if AuditEvent.objects.filter(project=project, action="profiling.assertions_replace").exists():
        return []  # the team deliberately removed every check
    return checks.parse_document(DEFAULT_DOCUMENT)


def _assertions_run(run, profile):
    AssertionResult.objects.filter(run=run).delete()
    summary = {"passed": 0, "failed_blocking": 0, "failed_warning": 0}
    out = []
    for pos, rule in enumerate(assertion_rules_for(run.project)):
        o = checks.evaluate(rule["check"], rule["params"], profile)
        out.append(
            AssertionResult(
                run=run,
                check_name=rule["check"],
                title=checks.title_of(rule["check"], rule["params"]),
                params=rule["params"],
                severity=rule["severity"],
                passed=o.passed,
                measured=o.measured,
                bound=o.bound,
                message=o.message,
                position=pos,
            )
        )
        summary["passed" if o.passed else f"failed_{rule['severity']}"] += 1
    AssertionResult.objects.bulk_create(out)
    return summary


@transaction.atomic
def assertions_replace(*, project, user, document):
    """Replace the project's assertions with ``document`` (dict, list, or YAML/JSON text), all or
    nothing: a document with one bad entry changes nothing."""
    require_role(user, project, Role.DATA_SCIENTIST)
    rules = checks.parse_document(document)
    before = checks.to_document(assertion_rules_for(project))
    AssertionRule.objects.filter(project=project).delete()
    AssertionRule.objects.bulk_create(
        [
            AssertionRule(
                project=project, check_name=r["check"], params=r["params"], severity=r["severity"], position=i
            )
            for i, r in enumerate(rules)
        ]
    )
    audit_record(
        actor=user,
        action="profiling.assertions_replace",
        project=project,
        data={"before": before, "after": checks.to_document(rules)},
    )
    return rules


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
