"""Alert rules: their kinds' defaults and parameters, made, changed and removed by PMs and data scientists."""

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.text import clean_name
from apps.projects.permissions import require_role

from ..models import (
    AlertRule,
    RuleKind,
)

RULE_EDITORS = (Role.PM, Role.DATA_SCIENTIST)
BELOW = {RuleKind.LIVE_ACCURACY, RuleKind.WORKER_DOWN}  # these fire when the value drops under the threshold
DRIFT_KINDS = {RuleKind.INPUT_DRIFT, RuleKind.INPUT_DRIFT_KS, RuleKind.EMBEDDING_DRIFT}
PARAMS = {"window_minutes": int, "min_n": int, "endpoint": str, "queue": str}
LOG_LOSS_RULE = "Prediction log rows lost"
DEFAULTS = {
    RuleKind.INPUT_DRIFT: 0.25,
    RuleKind.INPUT_DRIFT_KS: 0.3,
    RuleKind.EMBEDDING_DRIFT: 0.1,
    RuleKind.LIVE_ACCURACY: 0.9,
    RuleKind.ERROR_RATE: 0.05,
    RuleKind.LATENCY_P95: 500,
    RuleKind.WORKER_DOWN: 1,
    RuleKind.QUEUE_BACKLOG: 100,
    RuleKind.LOG_LOSS: 0,
}


# Rules ----------------------------------------------------------------------------------------------


def _rule_clean(data, partial=False, current=None):
    errors, out = {}, {}
    if "name" in data or not partial:
        name = clean_name(data.get("name"))
        if not name:
            errors["name"] = ["Give the rule a name."]
        elif len(name) > 120:
            errors["name"] = ["At most 120 characters."]
        out["name"] = name
    if "kind" in data or not partial:
        kind = data.get("kind")
        if kind not in RuleKind.values:
            errors["kind"] = [f"Unknown kind {kind!r}; one of: {', '.join(RuleKind.values)}."]
        out["kind"] = kind
    kind = out.get("kind") or (current.kind if current else None)
    if "threshold" in data or not partial:
        raw = data.get("threshold")
        if raw in (None, "") and kind in DEFAULTS:
            raw = DEFAULTS[kind]
        try:
            out["threshold"] = float(raw)
            if out["threshold"] != out["threshold"] or out["threshold"] < 0:
                raise ValueError
        except (TypeError, ValueError):
            errors["threshold"] = [f"The threshold must be a number of at least 0, not {raw!r}."]
        if kind in (RuleKind.LIVE_ACCURACY, RuleKind.ERROR_RATE) and "threshold" in out and out["threshold"] > 1:
            errors["threshold"] = ["This threshold is a share between 0 and 1."]
    if "params" in data:
        params = data.get("params") or {}
        if not isinstance(params, dict):
            errors["params"] = ["Params must be an object."]
        else:
            clean = {}
            for k, v in params.items():
                if k not in PARAMS:
                    errors["params"] = [f"Unknown parameter {k!r}; known: {', '.join(PARAMS)}."]
                    break
                if v in (None, ""):
                    continue
                try:
                    clean[k] = PARAMS[k](v)
                except (TypeError, ValueError):
                    errors["params"] = [f"Parameter {k!r} must be a {PARAMS[k].__name__}, not {v!r}."]
                    break
                if PARAMS[k] is int and clean[k] < 1:
                    errors["params"] = [f"Parameter {k!r} must be at least 1."]
            out["params"] = clean
    for flag in ("enabled", "retrain"):
        if flag in data:
            out[flag] = data[flag] in (True, "true", "on", "1", 1)
    if errors:
        raise ValidationError(errors)
    return out


@transaction.atomic
def alert_rule_create(*, project, user, data):
    require_role(user, project, *RULE_EDITORS)
    fields = _rule_clean(data)
    rule = AlertRule.objects.create(project=project, created_by=user, **fields)
    audit_record(actor=user, action="monitoring.rule_create", project=project, obj=rule, data=dict(fields.items()))
    return rule


@transaction.atomic
def alert_rule_update(*, rule, user, data):
    require_role(user, rule.project, *RULE_EDITORS)
    fields = _rule_clean(data, partial=True, current=rule)
    for k, v in fields.items():
        setattr(rule, k, v)
    rule.save()
    audit_record(actor=user, action="monitoring.rule_update", project=rule.project, obj=rule, data=fields)
    return rule


@transaction.atomic
def alert_rule_delete(*, rule, user):
    require_role(user, rule.project, *RULE_EDITORS)
    audit_record(
        actor=user,
        action="monitoring.rule_delete",
        project=rule.project,
        obj=rule,
        data={"name": rule.name, "kind": rule.kind},
    )
    rule.delete()


def alert_rules_defaults(*, project, user):
    """A sensible starting set (drift, live accuracy from the project's target, errors, latency, workers)."""
    require_role(user, project, *RULE_EDITORS)
    acc = next(
        (t.target for t in (project.approved_targets or []) if t.metric.lower() == "accuracy"),
        DEFAULTS[RuleKind.LIVE_ACCURACY],
    )
    made = []
    for kind, name, threshold in (
        (RuleKind.INPUT_DRIFT, "Input drift (PSI)", None),
        (RuleKind.INPUT_DRIFT_KS, "Input drift (KS)", None),
        (RuleKind.EMBEDDING_DRIFT, "Embedding drift", None),
        (RuleKind.LIVE_ACCURACY, "Live accuracy", acc),
        (RuleKind.ERROR_RATE, "Error rate", None),
        (RuleKind.LATENCY_P95, "Serving p95 latency", None),
        (RuleKind.WORKER_DOWN, "No live worker", None),
        (RuleKind.QUEUE_BACKLOG, "Queue backing up", None),
        (RuleKind.LOG_LOSS, LOG_LOSS_RULE, None),
    ):
        if not AlertRule.objects.filter(project=project, kind=kind).exists():
            made.append(
                alert_rule_create(project=project, user=user, data={"name": name, "kind": kind, "threshold": threshold})
            )
    return made
