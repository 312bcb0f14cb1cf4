"""Prometheus ``/metrics``: the numbers of the monitoring page, computed from rollups at scrape time.

Access: with MONITORING_METRICS_TOKEN set, a scraper sends ``Authorization: Bearer <token>``;
signed-in staff may always read it. Everyone else gets 403 (401 without credentials)."""

import datetime as dt
import hmac

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from . import infra, selectors
from .models import OPEN_ALERT, Alert, PredictionRollup
from .rollups import add_hist, percentile

WINDOW = dt.timedelta(minutes=5)


class PortalCollector:
    def collect(self):
        now = timezone.now()
        start = now - WINDOW
        minutes = WINDOW.total_seconds() / 60
        rate = GaugeMetricFamily(
            "mlportal_http_requests_per_minute", "Requests per minute over the last 5 minutes", labels=["endpoint"]
        )
        errors = GaugeMetricFamily(
            "mlportal_http_error_ratio", "Share of 5xx responses over the last 5 minutes", labels=["endpoint"]
        )
        latency = GaugeMetricFamily(
            "mlportal_http_latency_ms", "Latency percentiles over the last 5 minutes", labels=["endpoint", "quantile"]
        )
        for row in selectors.endpoint_table(start, now):
            rate.add_metric([row["endpoint"]], row["rate"])
            errors.add_metric([row["endpoint"]], row["error_rate"])
            for q in ("p50", "p95", "p99"):
                if row[q] is not None:
                    latency.add_metric([row["endpoint"], q], row[q])
        preds = GaugeMetricFamily(
            "mlportal_predictions_per_minute",
            "Predictions per minute over the last 5 minutes",
            labels=["project", "model_version"],
        )
        low = GaugeMetricFamily(
            "mlportal_predictions_low_confidence_ratio",
            "Share of low-confidence predictions",
            labels=["project", "model_version"],
        )
        plat = GaugeMetricFamily(
            "mlportal_prediction_latency_ms",
            "Serving latency percentiles (prediction log)",
            labels=["project", "model_version", "quantile"],
        )
        agg = {}
        for slug, mv, count, lowc, hist in PredictionRollup.objects.filter(minute__gte=start).values_list(
            "project__slug", "model_version_id", "count", "low_confidence", "latency_hist"
        ):
            a = agg.setdefault((slug, str(mv)), [0, 0, []])
            a[0] += count
            a[1] += lowc
            a[2] = add_hist(a[2], hist)
        for (slug, mv), (count, lowc, hist) in agg.items():
            preds.add_metric([slug, mv], count / minutes)
            low.add_metric([slug, mv], lowc / count if count else 0)
            for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
                v = percentile(hist, q)
                if v is not None:
                    plat.add_metric([slug, mv, name], v)
        yield from (rate, errors, latency, preds, low, plat)

        snap = infra.snapshot()
        queue = GaugeMetricFamily("mlportal_celery_queue_depth", "Messages waiting per Celery queue", labels=["queue"])
        for q, n in snap["queues"].items():
            queue.add_metric([q], n)
        workers = GaugeMetricFamily("mlportal_workers_live", "Workers with a recent heartbeat")
        workers.add_metric([], snap["live_workers"])
        seen = GaugeMetricFamily(
            "mlportal_worker_last_seen_seconds", "Seconds since a worker's last heartbeat", labels=["hostname"]
        )
        for w in snap["workers"]:
            seen.add_metric([w["hostname"]], (now - dt.datetime.fromisoformat(w["last_seen"])).total_seconds())
        jobs = GaugeMetricFamily("mlportal_jobs", "Jobs by kind and status", labels=["kind", "status"])
        for kind, counts in snap["jobs"].items():
            for status, n in counts.items():
                jobs.add_metric([kind, status], n)
        storage = GaugeMetricFamily("mlportal_storage_bytes", "Bytes stored by role", labels=["role"])
        for role, n in snap["storage"].items():
            storage.add_metric([role], n)
        up = GaugeMetricFamily("mlportal_up", "Health check passes (1) or fails (0)", labels=["check"])
        for name, check in snap["health"].items():
            up.add_metric([name], 1 if check["ok"] else 0)
        alerts = GaugeMetricFamily("mlportal_alerts_open", "Open alerts per project", labels=["project"])
        counts = {}
        for slug in Alert.objects.filter(status__in=OPEN_ALERT).values_list("project__slug", flat=True):
            counts[slug] = counts.get(slug, 0) + 1
        for slug, n in counts.items():
            alerts.add_metric([slug], n)
        yield from (queue, workers, seen, jobs, storage, up, alerts)


def _allowed(request):
    token = getattr(settings, "MONITORING_METRICS_TOKEN", "")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token):
        return True
    return bool(request.user.is_authenticated and request.user.is_staff)


def metrics_view(request):
    if not _allowed(request):
        anonymous = not request.user.is_authenticated and not request.META.get("HTTP_AUTHORIZATION")
        return HttpResponse(
            "Metrics need a staff login or the metrics bearer token.\n",
            status=401 if anonymous else 403,
            content_type="text/plain",
        )
    registry = CollectorRegistry()
    registry.register(PortalCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
