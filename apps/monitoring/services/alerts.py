"""Evaluating the rules (drift, live accuracy, errors, latency, workers, queues, lost log rows) and the
alerts they open: incidents, notifications, acknowledging and resolving."""

import datetime as dt
import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.selectors import live_workers
from apps.projects.models import Project
from apps.projects.permissions import require_role
from apps.registry.models import ModelVersion
from apps.registry.notify import notify

from .. import selectors
from ..drift import drift_compute
from ..infra import queue_depths
from ..models import (
    OPEN_ALERT,
    Alert,
    AlertRule,
    AlertStatus,
    EndpointRollup,
    IncidentEvent,
    PredictionRollup,
    RuleKind,
)
from ..rollups import add_hist, percentile
from .retrain import retrain_start
from .rules import BELOW, DEFAULTS, DRIFT_KINDS, LOG_LOSS_RULE

log = logging.getLogger(__name__)


# Evaluation -----------------------------------------------------------------------------------------


def _active_versions(project, since, until=None):
    rollups = PredictionRollup.objects.filter(project=project, minute__gte=since)
    if until is not None:
        rollups = rollups.filter(minute__lt=until)
    ids = rollups.values_list("model_version_id", flat=True).distinct()
    return ModelVersion.objects.filter(pk__in=list(ids)).select_related("registered_model__project", "dataset_version")


def drift_refresh(*, project, now=None):
    """Today's drift report of every version that served today."""

    now = now or timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if now - day_start < dt.timedelta(minutes=10):
        # Early in a day, close yesterday's reports too: its last minutes came after the last tick.
        yesterday = day_start - dt.timedelta(days=1)
        for v in _active_versions(project, yesterday, until=day_start):  # only versions that served yesterday
            drift_compute(model_version=v, day=yesterday.date())
    return [drift_compute(model_version=v, day=now.date()) for v in _active_versions(project, day_start)]


def rule_value(rule, *, now=None, reports=None):
    """(value, detail) of the rule's measure now; value None when there is not enough data."""
    now = now or timezone.now()
    p = rule.params or {}
    window = dt.timedelta(minutes=p.get("window_minutes", 60))
    start = now - window
    kind = rule.kind
    if kind in DRIFT_KINDS:
        reports = reports if reports is not None else drift_refresh(project=rule.project, now=now)
        min_n = p.get("min_n", 20)
        worst = None
        for r in reports:
            if kind == RuleKind.EMBEDDING_DRIFT:
                v, n = r.embedding_mmd, r.embedding_n
            else:
                v, n = (r.max_psi if kind == RuleKind.INPUT_DRIFT else r.max_ks), r.n
            if v is not None and n >= min_n and (worst is None or v > worst[0]):
                stat = (
                    max(r.stats, key=lambda s: r.stats[s]["psi" if kind == RuleKind.INPUT_DRIFT else "ks"])
                    if r.stats and kind != RuleKind.EMBEDDING_DRIFT
                    else "embeddings"
                )
                worst = (v, f"{r.model_version} on {r.day}: {stat} over {n} predictions")
        return worst or (None, "not enough predictions today")
    if kind == RuleKind.LIVE_ACCURACY:
        s = selectors.live_scores(rule.project, start=now - dt.timedelta(minutes=p.get("window_minutes", 7 * 24 * 60)))
        o = s["overall"]
        if o["n"] < p.get("min_n", 10):
            return None, f"{o['n']} labeled production inputs; need {p.get('min_n', 10)}"
        return o["accuracy"], f"accuracy on {o['n']} labeled production inputs"
    if kind == RuleKind.ERROR_RATE:
        qs = EndpointRollup.objects.filter(minute__gte=start)
        if p.get("endpoint"):
            qs = qs.filter(endpoint=p["endpoint"])
        count = errors = 0
        for c, e in qs.values_list("count", "errors"):
            count, errors = count + c, errors + e
        if count < p.get("min_n", 20):
            return None, f"{count} requests in the window"
        return errors / count, f"{errors} errors in {count} requests"
    if kind == RuleKind.LATENCY_P95:
        ep = p.get("endpoint") or "serving"
        if ep == "serving":
            rows = PredictionRollup.objects.filter(project=rule.project, minute__gte=start)
        else:
            rows = EndpointRollup.objects.filter(endpoint=ep, minute__gte=start)
        hist, n = [], 0
        for c, h in rows.values_list("count", "latency_hist"):
            n += c
            hist = add_hist(hist, h)
        if n < p.get("min_n", 20):
            return None, f"{n} requests in the window"
        return percentile(hist, 0.95), f"p95 of {n} {ep} requests"
    if kind == RuleKind.WORKER_DOWN:
        return float(live_workers().count()), "live workers"
    if kind == RuleKind.LOG_LOSS:
        lost = selectors.log_losses(rule.project, start)
        return float(lost["count"]), (
            f"prediction log rows lost in {p.get('window_minutes', 60)} min: "
            + ", ".join(f"{n} {why}" for why, n in lost["reasons"].items())
            if lost["count"]
            else "no prediction log row lost"
        )
    if kind == RuleKind.QUEUE_BACKLOG:
        depths = queue_depths()
        if p.get("queue"):
            return float(depths.get(p["queue"], 0)), f"queue {p['queue']}"
        q = max(depths, key=depths.get) if depths else ""
        return float(depths.get(q, 0)), f"deepest queue {q}"
    return None, "unknown kind"


def breached(rule, value):
    if value is None:
        return False
    return value < rule.threshold if rule.kind in BELOW else value > rule.threshold


def rules_evaluate(*, project, now=None, reports=None):
    """Evaluate every enabled rule of ``project``: open an alert for a breach (one open alert per
    rule), note recovery on an open alert whose condition cleared. Returns the alerts opened.
    ``reports``: today's drift reports when the caller just computed them."""
    now = now or timezone.now()
    rules = list(AlertRule.objects.filter(project=project, enabled=True))
    if reports is None:
        reports = drift_refresh(project=project, now=now) if any(r.kind in DRIFT_KINDS for r in rules) else []
    return [a for rule in rules for a in [rule_check(rule, now=now, reports=reports)] if a]


def rule_check(rule, *, now=None, reports=None):
    """Measure one rule: open its alert on a breach, note a recovery. Returns the alert opened, if any."""
    now = now or timezone.now()
    try:
        value, detail = rule_value(rule, now=now, reports=reports)
    except Exception as exc:  # noqa: BLE001 - one broken measure (broker down…) must not stop the other rules
        log.warning("rule %s could not be measured: %s", rule.pk, exc)
        value, detail = None, f"could not measure: {exc}"
    AlertRule.objects.filter(pk=rule.pk).update(last_value=value, last_evaluated_at=now)
    current = Alert.objects.filter(rule=rule, status__in=OPEN_ALERT).first()
    if breached(rule, value):
        if current is None:
            return alert_open(rule=rule, value=value, detail=detail)
        if current.recovered_at:
            Alert.objects.filter(pk=current.pk).update(recovered_at=None, value=value)
            IncidentEvent.objects.create(
                alert=current, kind="refired", message=f"Breached again: {value:.4g} ({detail})."
            )
    elif current is not None and value is not None and current.recovered_at is None:
        Alert.objects.filter(pk=current.pk).update(recovered_at=now)
        IncidentEvent.objects.create(
            alert=current,
            kind="recovered",
            message=f"Back within the threshold: {value:.4g} ({detail}). Resolve it with a note.",
        )
    return None


def on_predictions_lost(sender, losses=(), **kwargs):
    """Serving lost prediction log rows (``apps.serving.signals.predictions_lost``): every project
    concerned gets its alert at once, through its log-loss rule (made when the project has none; a
    rule switched off stays off)."""

    for project in Project.objects.filter(pk__in={x.project_id for x in losses if x.project_id}):
        rule = AlertRule.objects.filter(project=project, kind=RuleKind.LOG_LOSS).first()
        if rule is None:
            rule = AlertRule.objects.create(
                project=project,
                name=LOG_LOSS_RULE,
                kind=RuleKind.LOG_LOSS,
                threshold=DEFAULTS[RuleKind.LOG_LOSS],
                params={"window_minutes": 60},
            )
            audit_record(
                actor=None,
                action="monitoring.rule_create",
                project=project,
                obj=rule,
                reason="prediction log rows were lost",
                data={"kind": rule.kind},
            )
        if rule.enabled:
            rule_check(rule)


def _describe(rule, value, detail):
    op = "under" if rule.kind in BELOW else "over"
    return f"{rule.name}: {value:.4g} {op} {rule.threshold:g} ({detail})"


def alert_open(*, rule, value, detail=""):
    message = _describe(rule, value, detail)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                project=rule.project, rule=rule, title=message[:200], value=value, threshold=rule.threshold
            )
            IncidentEvent.objects.create(
                alert=alert,
                kind="opened",
                message=message,
                data={"kind": rule.kind, "value": value, "threshold": rule.threshold},
            )
            audit_record(
                actor=None,
                action="monitoring.alert_fired",
                project=rule.project,
                obj=alert,
                reason=message,
                data={"rule": rule.pk, "value": value},
            )
    except IntegrityError:  # a concurrent evaluation opened it first
        return None
    _notify(alert, "alert.fired", f"Alert: {message}")
    if rule.retrain:
        try:
            retrain_start(project=rule.project, alert=alert)
        except ValidationError as exc:
            IncidentEvent.objects.create(
                alert=alert, kind="retrain", message=f"Retraining could not start: {'; '.join(exc.messages)}"
            )
    return alert


def _notify(alert, event, message):
    """Tell the project's managers and data scientists through the registry's notifications; the
    incident timeline and the audit log hold the record either way."""
    from django.urls import reverse

    url = reverse("monitoring-alert", args=[alert.project.slug, alert.pk])
    try:
        notify(
            project=alert.project,
            event=event,
            message=message,
            url=url,
            roles=(Role.MANAGER, Role.DATA_SCIENTIST),
            obj=alert,
        )
    except Exception as exc:  # noqa: BLE001 - a mail server hiccup must not lose the alert
        log.warning("notification for alert %s failed: %s", alert.pk, exc)
        return False
    IncidentEvent.objects.create(
        alert=alert, kind="notified", message=f"Notified managers and data scientists ({event})."
    )
    return True


def alert_acknowledge(*, alert, user, note=""):
    require_role(user, alert.project, Role.MANAGER)
    now = timezone.now()
    with transaction.atomic():
        if not Alert.objects.filter(pk=alert.pk, status=AlertStatus.FIRING).update(
            status=AlertStatus.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=user
        ):
            current = Alert.objects.filter(pk=alert.pk).values_list("status", flat=True).first()
            raise ValidationError(
                {"status": [f"Alert #{alert.pk} is {current}; only a firing alert can be acknowledged."]}
            )
        IncidentEvent.objects.create(alert=alert, kind="acknowledged", actor=user, message=(note or "").strip())
        audit_record(
            actor=user,
            action="monitoring.alert_acknowledged",
            project=alert.project,
            obj=alert,
            reason=(note or "").strip(),
        )
    alert.refresh_from_db()
    _notify(alert, "alert.acknowledged", f"{user} acknowledged: {alert.title}")
    return alert


def alert_resolve(*, alert, user, note):
    require_role(user, alert.project, Role.MANAGER)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": ["Say what was done in a note: it stays in the incident's timeline."]})
    now = timezone.now()
    with transaction.atomic():
        if not Alert.objects.filter(pk=alert.pk, status__in=OPEN_ALERT).update(
            status=AlertStatus.RESOLVED, resolved_at=now, resolved_by=user, resolution_note=note
        ):
            current = Alert.objects.filter(pk=alert.pk).values_list("status", flat=True).first()
            raise ValidationError({"status": [f"Alert #{alert.pk} is {current}; only an open alert can be resolved."]})
        IncidentEvent.objects.create(alert=alert, kind="resolved", actor=user, message=note)
        audit_record(actor=user, action="monitoring.alert_resolved", project=alert.project, obj=alert, reason=note)
    alert.refresh_from_db()
    _notify(alert, "alert.resolved", f"{user} resolved: {alert.title}")
    return alert
