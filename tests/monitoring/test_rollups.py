import datetime as dt

from django.utils import timezone

from apps.monitoring.models import PredictionRollup
from apps.monitoring.rollups import LATENCY_EDGES, percentile
from apps.monitoring.selectors import prediction_series, serving_latency, time_range

from .conftest import log_predictions


def test_signal_keeps_per_minute_rollups_incrementally(project, mv):
    at = timezone.now().replace(second=10, microsecond=0)
    log_predictions(
        mv,
        [
            {
                "predicted_class": "good",
                "confidence": 0.9,
                "latency_ms": 10,
                "input_stats": {"brightness": 100.0, "sharpness": 50.0},
            }
        ]
        * 3,
        at=at,
    )
    log_predictions(
        mv,
        [{"predicted_class": "defect", "confidence": 0.4, "latency_ms": 200, "input_stats": {"brightness": 30.0}}],
        at=at + dt.timedelta(seconds=5),
    )
    log_predictions(mv, [{"predicted_class": "good", "confidence": 0.99}], at=at + dt.timedelta(minutes=1))
    rows = list(PredictionRollup.objects.filter(model_version=mv).order_by("minute"))
    assert [r.count for r in rows] == [4, 1]
    first = rows[0]
    assert first.class_counts == {"good": 3, "defect": 1}
    assert first.low_confidence == 1
    assert first.latency_sum == 230
    assert sum(first.latency_hist) == 4 and sum(first.confidence_hist) == 4
    assert sum(first.stats_hist["brightness"]) == 4 and sum(first.stats_hist["sharpness"]) == 3


def test_percentiles_from_fixed_bins():
    hist = [0] * (len(LATENCY_EDGES) - 1)
    for ms in [10] * 90 + [1000] * 10:
        hist[next(i for i in range(len(hist)) if LATENCY_EDGES[i] <= ms < LATENCY_EDGES[i + 1])] += 1
    assert 8 <= percentile(hist, 0.5) <= 12
    assert 800 <= percentile(hist, 0.99) <= 1200
    assert percentile([], 0.5) is None


def test_selectors_read_rollups_not_the_log(project, mv, django_assert_max_num_queries):
    log_predictions(mv, [{"latency_ms": 5}] * 50)
    from apps.serving.models import PredictionLog

    PredictionLog.objects.all().delete()  # charts must not need the raw log
    name, start, end, bucket = time_range("1h")
    per, totals = prediction_series(project, start, end, bucket)
    assert totals[mv.pk]["count"] == 50
    assert serving_latency(project, start, end)["count"] == 50


def test_drift_reports_are_per_version_and_day_and_yesterday_is_closed_early_in_the_day(project, people, mv):
    from apps.monitoring.models import DriftReport
    from apps.monitoring.services import drift_refresh

    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    log_predictions(mv, [{"input_stats": {"brightness": 90.0}}] * 4, at=midnight - dt.timedelta(minutes=3))
    log_predictions(mv, [{"input_stats": {"brightness": 90.0}}] * 2, at=midnight + dt.timedelta(minutes=1))
    drift_refresh(project=project, now=midnight + dt.timedelta(minutes=2))
    reports = {r.day: r.n for r in DriftReport.objects.filter(model_version=mv)}
    assert reports == {(midnight - dt.timedelta(days=1)).date(): 4, midnight.date(): 2}
