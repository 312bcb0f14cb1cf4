"""The project's data assertions: its document (or the default one) replaced by a data scientist,
and checked against each profile."""

import logging

from django.db import transaction

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.models import AuditEvent
from apps.projects.permissions import require_role

from .. import assertions as checks
from ..models import AssertionResult, AssertionRule

log = logging.getLogger(__name__)

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
