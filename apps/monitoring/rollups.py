"""Per-minute rollups: built incrementally from each batch of logged predictions and from the
request middleware's in-process counters. Charts and rules read these, never the raw log."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction

from apps.profiling import imagestats

from .models import EndpointRollup, PredictionRollup

# Fixed bins so that any set of minutes adds up bin for bin.
LATENCY_EDGES = [0.0] + [round(float(x), 4) for x in np.geomspace(0.5, 120_000, 48)]
CONFIDENCE_EDGES = [round(i / 20, 2) for i in range(21)]
DRIFT_STATS = ("brightness", "contrast", "sharpness", "entropy", "width", "height")


def low_confidence_below():
    return getattr(settings, "MONITORING_LOW_CONFIDENCE", 0.6)


def minute_of(dt):
    return dt.replace(second=0, microsecond=0)


def bin_index(edges, value):
    i = int(np.searchsorted(edges, value, side="right")) - 1
    return min(max(i, 0), len(edges) - 2)


def add_hist(a, b):
    if not a:
        return list(b)
    if not b:
        return list(a)
    return [x + y for x, y in zip(a, b)]


def percentile(hist, q, edges=LATENCY_EDGES):
    """The ``q`` (0..1) quantile of a fixed-bin histogram, linearly interpolated inside its bin."""
    total = sum(hist or [])
    if not total:
        return None
    target = q * total
    cum = 0
    for i, c in enumerate(hist):
        if c and cum + c >= target:
            lo, hi = edges[i], edges[i + 1]
            return lo + (hi - lo) * ((target - cum) / c)
        cum += c
    return edges[-1]


# Predictions ----------------------------------------------------------------------------------------


def aggregate_predictions(logs):
    """{(project_id, version_id, minute): rollup fields} for a batch of PredictionLog-like rows."""
    low = low_confidence_below()
    groups = defaultdict(list)
    for log in logs:
        groups[(log.project_id, log.model_version_id, minute_of(log.created_at))].append(log)
    out = {}
    for key, rows in groups.items():
        lat = np.array([r.latency_ms for r in rows], dtype=np.float64)
        conf = np.array([r.confidence for r in rows], dtype=np.float64)
        classes = defaultdict(int)
        for r in rows:
            classes[r.predicted_class] += 1
        stats = {}
        for stat in DRIFT_STATS:
            vals = [(r.input_stats or {}).get(stat) for r in rows]
            if any(v is not None for v in vals):
                stats[stat] = imagestats.histogram(stat, vals)
        out[key] = {
            "count": len(rows),
            "low_confidence": int((conf < low).sum()),
            "latency_sum": float(lat.sum()),
            "latency_hist": imagestats.histogram("latency", lat, edges=LATENCY_EDGES),
            "confidence_hist": imagestats.histogram("confidence", conf, edges=CONFIDENCE_EDGES),
            "class_counts": dict(classes),
            "stats_hist": stats,
        }
    return out


def _merge_into(row, fields):
    row.count += fields["count"]
    row.low_confidence += fields["low_confidence"]
    row.latency_sum += fields["latency_sum"]
    row.latency_hist = add_hist(row.latency_hist, fields["latency_hist"])
    row.confidence_hist = add_hist(row.confidence_hist, fields["confidence_hist"])
    cc = dict(row.class_counts or {})
    for k, v in fields["class_counts"].items():
        cc[k] = cc.get(k, 0) + v
    row.class_counts = cc
    sh = dict(row.stats_hist or {})
    for k, v in fields["stats_hist"].items():
        sh[k] = add_hist(sh.get(k), v)
    row.stats_hist = sh


def prediction_rollups_add(*, logs):
    """Fold a batch of logged predictions into their minutes' rollups (one transaction; a racing
    writer creating the same minute first makes us merge into its row instead)."""
    for (project_id, version_id, minute), fields in aggregate_predictions(logs).items():
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    row = (
                        PredictionRollup.objects.select_for_update()
                        .filter(model_version_id=version_id, minute=minute)
                        .first()
                    )
                    if row is None:
                        PredictionRollup.objects.create(
                            project_id=project_id, model_version_id=version_id, minute=minute, **fields
                        )
                    else:
                        _merge_into(row, fields)
                        row.save()
                break
            except IntegrityError:
                continue


def on_predictions_logged(sender, logs=(), **kwargs):
    if logs:
        prediction_rollups_add(logs=logs)


# Requests -------------------------------------------------------------------------------------------


def endpoint_rollups_add(counters):
    """Merge {(endpoint, minute): [count, errors, latency_sum, hist]} into EndpointRollup rows."""
    for (endpoint, minute), (count, errors, lat_sum, hist) in counters.items():
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    row = EndpointRollup.objects.select_for_update().filter(endpoint=endpoint, minute=minute).first()
                    if row is None:
                        EndpointRollup.objects.create(
                            endpoint=endpoint,
                            minute=minute,
                            count=count,
                            errors=errors,
                            latency_sum=lat_sum,
                            latency_hist=list(hist),
                        )
                    else:
                        row.count += count
                        row.errors += errors
                        row.latency_sum += lat_sum
                        row.latency_hist = add_hist(row.latency_hist, hist)
                        row.save()
                break
            except IntegrityError:
                continue
