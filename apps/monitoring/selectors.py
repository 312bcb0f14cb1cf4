"""Reads for the monitoring pages, the API, /metrics and the rules: rollups, never the raw log."""

import datetime as dt
from collections import defaultdict

from django.db.models import Max, Min, Sum
from django.utils import timezone

from apps.core.stages import StageSpan
from apps.labeling.models import ItemLabel
from apps.registry.models import ModelVersion
from apps.serving.models import PredictionLog, PredictionLogLoss

from .models import OPEN_ALERT, Alert, AlertRule, DriftReport, EndpointRollup, InfraSample, LiveSample, PredictionRollup
from .rollups import CONFIDENCE_EDGES, add_hist, percentile

RANGES = {
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
DEFAULT_RANGE = "24h"


def time_range(name, now=None):
    """(name, start, end, bucket) for a range name; unknown names fall back to the default."""
    name = name if name in RANGES else DEFAULT_RANGE
    end = now or timezone.now()
    span = RANGES[name]
    bucket = (
        dt.timedelta(minutes=1)
        if span <= dt.timedelta(hours=1)
        else dt.timedelta(minutes=5)
        if span <= dt.timedelta(hours=6)
        else (
            dt.timedelta(minutes=15)
            if span <= dt.timedelta(days=1)
            else dt.timedelta(hours=1)
            if span <= dt.timedelta(days=7)
            else dt.timedelta(hours=6)
        )
    )
    return name, end - span, end, bucket


def bucket_of(t, bucket):
    seconds = int(bucket.total_seconds())
    ts = int(t.timestamp())
    return dt.datetime.fromtimestamp(ts - ts % seconds, tz=dt.UTC)


def versions_of(project):
    return ModelVersion.objects.filter(registered_model__project=project).select_related("registered_model")


# Model ------------------------------------------------------------------------------------------------


def prediction_series(project, start, end, bucket, version_id=None):
    """Per version: buckets with count, low-confidence share, class counts, latency percentiles;
    plus totals (confidence histogram, class counts)."""
    qs = PredictionRollup.objects.filter(project=project, minute__gte=start, minute__lt=end)
    if version_id:
        qs = qs.filter(model_version_id=version_id)
    per = defaultdict(
        lambda: defaultdict(lambda: {"count": 0, "low": 0, "classes": defaultdict(int), "lat": [], "lat_sum": 0.0})
    )
    totals = defaultdict(lambda: {"count": 0, "low": 0, "confidence": [], "classes": defaultdict(int), "lat": []})
    for row in qs.values_list(
        "model_version_id",
        "minute",
        "count",
        "low_confidence",
        "latency_sum",
        "latency_hist",
        "confidence_hist",
        "class_counts",
    ).iterator(chunk_size=2000):
        vid, minute, count, low, lat_sum, lat_hist, conf_hist, classes = row
        b = per[vid][bucket_of(minute, bucket)]
        b["count"] += count
        b["low"] += low
        b["lat_sum"] += lat_sum
        b["lat"] = add_hist(b["lat"], lat_hist)
        t = totals[vid]
        t["count"] += count
        t["low"] += low
        t["confidence"] = add_hist(t["confidence"], conf_hist)
        t["lat"] = add_hist(t["lat"], lat_hist)
        for k, v in classes.items():
            b["classes"][k] += v
            t["classes"][k] += v
    return per, totals


def serving_latency(project, start, end):
    """(count, p50, p95, p99) of the serving process's predictions (from prediction rollups)."""
    hist, n = [], 0
    for count, h in (
        PredictionRollup.objects.filter(project=project, minute__gte=start, minute__lt=end)
        .values_list("count", "latency_hist")
        .iterator(chunk_size=2000)
    ):
        n += count
        hist = add_hist(hist, h)
    return {"count": n, "p50": percentile(hist, 0.5), "p95": percentile(hist, 0.95), "p99": percentile(hist, 0.99)}


def drift_reports(project, start, version_id=None):
    qs = DriftReport.objects.filter(project=project, day__gte=start.date()).select_related(
        "model_version__registered_model"
    )
    if version_id:
        qs = qs.filter(model_version_id=version_id)
    return list(qs.order_by("day"))


def latest_drift(project, version=None):
    qs = DriftReport.objects.filter(project=project)
    if version is not None:
        qs = qs.filter(model_version=version)
    return qs.order_by("-day", "-computed_at").first()


# Live accuracy ----------------------------------------------------------------------------------------


def live_scores(project, start=None, end=None, version_id=None):
    """Accuracy, macro precision and recall of predictions on labeled live samples, per day."""

    qs = LiveSample.objects.filter(project=project)
    if start:
        qs = qs.filter(predicted_at__gte=start)
    if end:
        qs = qs.filter(predicted_at__lt=end)
    if version_id:
        qs = qs.filter(model_version_id=version_id)
    samples = list(qs.values_list("item_id", "predicted_class", "predicted_at"))
    truth = dict(
        ItemLabel.objects.filter(item_id__in=[s[0] for s in samples]).values_list("item_id", "label_class__name")
    )
    pairs_by_day = defaultdict(list)
    pairs = []
    for item_id, pred, at in samples:
        if item_id in truth:
            pairs.append((truth[item_id], pred))
            pairs_by_day[at.date()].append((truth[item_id], pred))
    return {
        "overall": scores(pairs),
        "pending": len(samples) - len(pairs),
        "sampled": len(samples),
        "days": [{"day": d.isoformat(), **scores(p)} for d, p in sorted(pairs_by_day.items())],
    }


def scores(pairs):
    n = len(pairs)
    if not n:
        return {"n": 0, "accuracy": None, "precision": None, "recall": None}
    classes = sorted({t for t, _ in pairs} | {p for _, p in pairs})
    precisions, recalls = [], []
    for c in classes:
        tp = sum(1 for t, p in pairs if t == c and p == c)
        predicted = sum(1 for _, p in pairs if p == c)
        actual = sum(1 for t, _ in pairs if t == c)
        if predicted:
            precisions.append(tp / predicted)
        if actual:
            recalls.append(tp / actual)
    return {
        "n": n,
        "accuracy": sum(1 for t, p in pairs if t == p) / n,
        "precision": sum(precisions) / len(precisions) if precisions else None,
        "recall": sum(recalls) / len(recalls) if recalls else None,
    }


# Infrastructure ---------------------------------------------------------------------------------------


def endpoint_table(start, end):
    """Per endpoint: requests, requests/min, error rate and latency percentiles over the range."""
    rows = defaultdict(lambda: {"count": 0, "errors": 0, "hist": []})
    for ep, count, errors, hist in (
        EndpointRollup.objects.filter(minute__gte=start, minute__lt=end)
        .values_list("endpoint", "count", "errors", "latency_hist")
        .iterator(chunk_size=2000)
    ):
        r = rows[ep]
        r["count"] += count
        r["errors"] += errors
        r["hist"] = add_hist(r["hist"], hist)
    minutes = max(1.0, (end - start).total_seconds() / 60)
    out = []
    for ep, r in sorted(rows.items(), key=lambda kv: -kv[1]["count"]):
        out.append(
            {
                "endpoint": ep,
                "count": r["count"],
                "rate": r["count"] / minutes,
                "error_rate": r["errors"] / r["count"] if r["count"] else 0.0,
                "p50": percentile(r["hist"], 0.5),
                "p95": percentile(r["hist"], 0.95),
                "p99": percentile(r["hist"], 0.99),
            }
        )
    return out


def endpoint_series(start, end, bucket, limit=8):
    """Per endpoint (busiest first): buckets with count, errors and latency histogram."""
    per = defaultdict(lambda: defaultdict(lambda: {"count": 0, "errors": 0, "hist": []}))
    for ep, minute, count, errors, hist in (
        EndpointRollup.objects.filter(minute__gte=start, minute__lt=end)
        .values_list("endpoint", "minute", "count", "errors", "latency_hist")
        .iterator(chunk_size=2000)
    ):
        b = per[ep][bucket_of(minute, bucket)]
        b["count"] += count
        b["errors"] += errors
        b["hist"] = add_hist(b["hist"], hist)
    busiest = sorted(per, key=lambda ep: -sum(b["count"] for b in per[ep].values()))[:limit]
    return {ep: per[ep] for ep in busiest}


def infra_samples(start, end, limit=2000):
    return list(InfraSample.objects.filter(taken_at__gte=start, taken_at__lt=end).order_by("-taken_at")[:limit])[::-1]


def latest_infra():
    return InfraSample.objects.order_by("-taken_at").first()


# Alerts -----------------------------------------------------------------------------------------------


def rules_of(project):
    return AlertRule.objects.filter(project=project)


def alerts_of(project, status=None):
    qs = Alert.objects.filter(project=project).select_related("rule", "acknowledged_by", "resolved_by")
    if status == "open":
        qs = qs.filter(status__in=OPEN_ALERT)
    elif status:
        qs = qs.filter(status=status)
    return qs


def firing_count(project):
    return Alert.objects.filter(project=project, status__in=OPEN_ALERT).count()


def last_prediction_at(project):
    return PredictionRollup.objects.filter(project=project).aggregate(m=Max("minute"))["m"]


def predictions_total(project, start, end):
    return (
        PredictionRollup.objects.filter(project=project, minute__gte=start, minute__lt=end).aggregate(n=Sum("count"))[
            "n"
        ]
        or 0
    )


CONFIDENCE_CENTRES = [(CONFIDENCE_EDGES[i] + CONFIDENCE_EDGES[i + 1]) / 2 for i in range(len(CONFIDENCE_EDGES) - 1)]


def log_losses(project, start):
    """Prediction log rows lost since ``start`` (serving's exact counts): {"count", "reasons": {why: n}}."""

    reasons = {}
    for why, n in PredictionLogLoss.objects.filter(project=project, at__gte=start).values_list("reason", "count"):
        reasons[why] = reasons.get(why, 0) + n
    return {"count": sum(reasons.values()), "reasons": reasons}


def monitoring_span(project):
    """Monitoring began with the first alert rule or logged answer, and was in place once both were."""
    rule = AlertRule.objects.filter(project=project).aggregate(t=Min("created_at"))["t"]
    answer = PredictionLog.objects.filter(project=project).aggregate(t=Min("created_at"))["t"]
    known = [t for t in (rule, answer) if t is not None]
    return StageSpan(min(known) if known else None, max(known) if len(known) == 2 else None)
