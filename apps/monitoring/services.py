"""Every monitoring write: rules, rule evaluation (alerts, incidents, notifications, retraining),
acknowledging and resolving, live-accuracy sampling and the reference-embedding job."""

import datetime as dt
import hashlib
import io
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from apps.accounts.models import Role
from apps.core.audit import audit_record
from apps.core.jobs import JobStatus, QueueUnavailable, dispatch, transition
from apps.core.text import clean_name
from apps.projects.permissions import require_role
from apps.registry.models import ModelVersion, Stage

from . import selectors
from .models import (
    OPEN_ALERT,
    Alert,
    AlertRule,
    AlertStatus,
    EndpointRollup,
    IncidentEvent,
    LiveSample,
    PredictionRollup,
    ReferenceEmbedding,
    Retrain,
    RetrainStatus,
    RuleKind,
)
from .rollups import add_hist, low_confidence_below, percentile

log = logging.getLogger(__name__)

RULE_EDITORS = (Role.PM, Role.DATA_SCIENTIST)
BELOW = {RuleKind.LIVE_ACCURACY, RuleKind.WORKER_DOWN}  # these fire when the value drops under the threshold
DRIFT_KINDS = {RuleKind.INPUT_DRIFT, RuleKind.INPUT_DRIFT_KS, RuleKind.EMBEDDING_DRIFT}
PARAMS = {"window_minutes": int, "min_n": int, "endpoint": str, "queue": str}
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


# Evaluation -----------------------------------------------------------------------------------------


def _active_versions(project, since, until=None):
    rollups = PredictionRollup.objects.filter(project=project, minute__gte=since)
    if until is not None:
        rollups = rollups.filter(minute__lt=until)
    ids = rollups.values_list("model_version_id", flat=True).distinct()
    return ModelVersion.objects.filter(pk__in=list(ids)).select_related("registered_model__project", "dataset_version")


def drift_refresh(*, project, now=None):
    """Today's drift report of every version that served today."""
    from .drift import drift_compute

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
        from apps.core.selectors import live_workers

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
        from .infra import queue_depths

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


LOG_LOSS_RULE = "Prediction log rows lost"


def on_predictions_lost(sender, losses=(), **kwargs):
    """Serving lost prediction log rows (``apps.serving.signals.predictions_lost``): every project
    concerned gets its alert at once, through its log-loss rule (made when the project has none; a
    rule switched off stays off)."""
    from apps.projects.models import Project

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

    from apps.registry.notify import notify

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


# Live accuracy --------------------------------------------------------------------------------------


def _item_for_blob(project, blob, name):
    from apps.core.storage import blob_read
    from apps.datasets.models import Item

    item = Item.objects.filter(project=project, sha256=blob.sha256).first()
    if item:
        return item
    with Image.open(io.BytesIO(blob_read(blob))) as im:
        w, h, mode, fmt = im.width, im.height, im.mode, im.format or ""
    item, _ = Item.objects.get_or_create(
        project=project,
        sha256=blob.sha256,
        defaults=dict(
            blob=blob,
            original_name=name,
            width=w,
            height=h,
            mode=mode,
            format=fmt,
            bytes=blob.size,
            source="prediction",
        ),
    )
    return item


def _draw(pk, seed=None):
    digest = hashlib.sha256(f"{seed or ''}:{pk}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def live_sample_collect(*, project, since=None, low_limit=None, random_share=None, seed=None):
    """Send production inputs to the labeling queue: every kept low-confidence one first (lowest
    confidence first, up to ``low_limit``), then a random ``random_share`` of the other kept ones.
    Each becomes an Item (source="prediction") once; returns the LiveSamples made."""
    from apps.labeling.services import queue_for_review
    from apps.serving.models import PredictionLog

    low_limit = low_limit if low_limit is not None else getattr(settings, "MONITORING_LOW_CONFIDENCE_LIMIT", 50)
    random_share = random_share if random_share is not None else getattr(settings, "MONITORING_RANDOM_SHARE", 0.05)
    since = since or timezone.now() - dt.timedelta(days=1)
    kept = PredictionLog.objects.filter(project=project, created_at__gte=since, input_blob__isnull=False).exclude(
        pk__in=LiveSample.objects.filter(project=project, predicted_at__gte=since).values("prediction_id")
    )
    threshold = low_confidence_below()
    low = list(
        kept.filter(confidence__lt=threshold).order_by("confidence", "id").values_list("pk", flat=True)[:low_limit]
    )
    rest = kept.filter(confidence__gte=threshold).values_list("pk", flat=True)
    # Each prediction's draw depends on its id alone, so ticks that see it again draw the same: the
    # share stays ``random_share`` however often the collection runs.
    picked = [pk for pk in rest if _draw(pk, seed) < random_share] if random_share > 0 else []
    made = []
    logs = PredictionLog.objects.select_related("input_blob", "model_version__registered_model").in_bulk(low + picked)
    for pk, reason in [(pk, "low_confidence") for pk in low] + [(pk, "random") for pk in picked]:
        p = logs[pk]
        with transaction.atomic():
            item = _item_for_blob(
                project, p.input_blob, f"prediction-{p.request_id or p.pk}.{(p.input_blob.path.rsplit('.', 1)[-1])}"
            )
            sample, created = LiveSample.objects.get_or_create(
                prediction=p,
                defaults=dict(
                    project=project,
                    model_version=p.model_version,
                    item=item,
                    reason=reason,
                    predicted_class=p.predicted_class,
                    predicted_at=p.created_at,
                ),
            )
            if created:
                why = "low confidence" if reason == "low_confidence" else "random live-accuracy sample"
                queue_for_review(
                    item=item,
                    reason=f"Production input ({why}): {p.model_version} said "
                    f"{p.predicted_class} at {p.confidence:.0%}",
                )
                made.append(sample)
    return made


# Retraining -----------------------------------------------------------------------------------------


def _base_version(project):
    qs = ModelVersion.objects.filter(registered_model__project=project).select_related("run")
    return qs.filter(stage=Stage.PRODUCTION).order_by("-stage_changed_at", "-id").first() or qs.order_by("-id").first()


def retrain_start(*, project, alert=None, user=None):
    """A new dataset version of every labeled item (the newly labeled production inputs included),
    profiled for the data-quality gate; ``retrain_advance`` launches the run once the profile passes."""
    from apps.datasets.services import dataset_version_create
    from apps.profiling.services import profile_run_start

    base = _base_version(project)
    note = f"Retraining after alert #{alert.pk}: {alert.title}" if alert else "Retraining requested from monitoring"
    version = dataset_version_create(
        project=project, user=user, name="Retraining", note=note[:500], seed=base.dataset_version.seed if base else 0
    )
    profile = profile_run_start(version=version, user=user)
    retrain = Retrain.objects.create(
        project=project, alert=alert, dataset_version=version, base_version=base, profile_run=profile
    )
    audit_record(
        actor=user,
        action="monitoring.retrain_start",
        project=project,
        obj=retrain,
        data={"dataset_version": version.number, "alert": alert.pk if alert else None},
    )
    if alert:
        IncidentEvent.objects.create(
            alert=alert,
            kind="retrain",
            message=(
                f"Dataset version v{version.number} frozen with {version.item_count} images "
                f"(production inputs labeled so far included); profiling it before training."
            ),
        )
    return retrain


def retrain_advance(*, retrain):
    """Launch the run when the new version's profile succeeded (it then goes through the usual
    promotion gate and approval like any run); record why when it cannot."""
    from apps.profiling.models import ProfileRun
    from apps.training.services import training_run_create

    if retrain.status != RetrainStatus.PROFILING:
        return retrain
    profile = ProfileRun.objects.filter(pk=retrain.profile_run_id).first()
    if profile is None or profile.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        return _retrain_fail(retrain, f"The profile of v{retrain.dataset_version.number} did not succeed.")
    if profile.status != JobStatus.SUCCEEDED:
        return retrain
    config = dict(retrain.base_version.run.config) if retrain.base_version else None
    try:
        run = training_run_create(
            project=retrain.project,
            user=None,
            dataset_version=retrain.dataset_version,
            config=config,
            name=f"Retraining v{retrain.dataset_version.number}",
        )
    except ValidationError as exc:
        return _retrain_fail(retrain, "; ".join(exc.messages))
    except QueueUnavailable as exc:  # the run row is failed with the reason; so is the retraining
        return _retrain_fail(retrain, str(exc.detail))
    if Retrain.objects.filter(pk=retrain.pk, status=RetrainStatus.PROFILING).update(
        status=RetrainStatus.LAUNCHED, run=run
    ):
        if retrain.alert_id:
            IncidentEvent.objects.create(
                alert_id=retrain.alert_id,
                kind="retrain",
                data={"run": run.pk},
                message=(
                    f"Training run #{run.pk} launched on v{retrain.dataset_version.number}; register and promote it "
                    "through the registry's gate and approval as usual."
                ),
            )
    retrain.refresh_from_db()
    return retrain


def _retrain_fail(retrain, why):
    if Retrain.objects.filter(pk=retrain.pk, status=RetrainStatus.PROFILING).update(
        status=RetrainStatus.FAILED, error=why
    ):
        if retrain.alert_id:
            IncidentEvent.objects.create(
                alert_id=retrain.alert_id, kind="retrain", message=f"Retraining stopped: {why}"
            )
    retrain.refresh_from_db()
    return retrain


# Reference embeddings -------------------------------------------------------------------------------


def reference_embedding_start(*, model_version):
    ref, created = ReferenceEmbedding.objects.get_or_create(model_version=model_version)
    if not created and not transition(
        ReferenceEmbedding, ref.pk, (JobStatus.FAILED, JobStatus.CANCELLED), JobStatus.QUEUED, error=""
    ):
        return ref
    from .tasks import reference_embedding_execute as task

    dispatch(task, ref.pk, job=ref)
    return ref


def reference_embedding_execute(*, ref_id):
    """Embed (a spread-out sample of) the version's train split with the registered .keras model."""
    from apps.core.storage import blob_read
    from apps.registry.artifacts import artifact_bytes

    from .drift import embed_images

    ref = ReferenceEmbedding.objects.select_related("model_version__dataset_version").get(pk=ref_id)
    if not transition(
        ReferenceEmbedding,
        ref.pk,
        JobStatus.QUEUED,
        JobStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    ):
        return ref
    mv = ref.model_version
    try:
        limit = getattr(settings, "MONITORING_REFERENCE_EMBEDDINGS", 200)
        entries = list(
            mv.dataset_version.entries.filter(split="train").select_related("item__blob").order_by("item_id")
        )
        step = max(1, len(entries) // limit)
        images = [blob_read(e.item.blob) for e in entries[::step][:limit]]
        spec = mv.input_spec or {}
        vectors = embed_images(
            artifact_bytes(mv, "keras"),
            images,
            image_size=int(spec.get("image_size", 128)),
            channels=int(spec.get("channels", 1)),
        )
    except Exception as exc:  # noqa: BLE001 - recorded on the job row; the drift report just lacks embeddings
        transition(
            ReferenceEmbedding,
            ref.pk,
            JobStatus.RUNNING,
            JobStatus.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        ref.refresh_from_db()
        return ref
    transition(
        ReferenceEmbedding, ref.pk, JobStatus.RUNNING, JobStatus.SUCCEEDED, finished_at=timezone.now(), vectors=vectors
    )
    ref.refresh_from_db()
    return ref


# The beat tick ----------------------------------------------------------------------------------------


def monitoring_tick(*, now=None):
    """What beat runs every minute: the infrastructure sample, then per project with traffic or
    rules: live sampling, rule evaluation (which refreshes drift) and pending retraining."""
    from apps.projects.models import Project

    from .infra import infra_sample_take
    from .middleware import counters

    counters.flush()
    try:
        infra_sample_take(now=now)
    except Exception:
        log.exception("infrastructure sample failed")
    recent = (now or timezone.now()) - dt.timedelta(days=1)
    with_rules = set(AlertRule.objects.filter(enabled=True).values_list("project_id", flat=True))
    serving = set(PredictionRollup.objects.filter(minute__gte=recent).values_list("project_id", flat=True).distinct())
    for project in Project.objects.filter(pk__in=with_rules | serving).order_by("pk"):
        try:
            live_sample_collect(project=project)
            reports = drift_refresh(project=project, now=now)  # the drift charts' reports, rules or not
            if project.pk in with_rules:
                rules_evaluate(project=project, now=now, reports=reports)
        except Exception:  # one project's failure must not stop the others' monitoring
            log.exception("monitoring of project %s failed", project.pk)
    for retrain in Retrain.objects.filter(status=RetrainStatus.PROFILING):
        try:
            retrain_advance(retrain=retrain)
        except Exception:
            log.exception("retrain %s could not advance", retrain.pk)
