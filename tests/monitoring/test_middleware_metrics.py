import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.core.models import WorkerHeartbeat
from apps.monitoring import infra
from apps.monitoring.middleware import counters
from apps.monitoring.models import EndpointRollup, InfraSample
from apps.monitoring.selectors import endpoint_table
from tests.factories import make_item

from .conftest import log_predictions


def test_middleware_counts_by_route_name_in_process_and_flushes_per_minute(
    project, people, settings, django_assert_max_num_queries
):
    settings.MONITORING_FLUSH_SECONDS = 3600
    c = Client()
    c.force_login(people["pm"])
    for _ in range(3):
        assert c.get(reverse("monitoring-dashboard", args=[project.slug])).status_code == 200
    c.get(f"/p/{project.slug}/monitoring/alerts/999/")  # 404, not an error
    assert not EndpointRollup.objects.exists()  # nothing written per request
    counters.flush()
    rows = {}
    for r in EndpointRollup.objects.all():  # the requests may straddle a minute
        rows.setdefault(r.endpoint, [0, 0])
        rows[r.endpoint][0] += r.count
        rows[r.endpoint][1] += r.errors
    assert rows["monitoring-dashboard"] == [3, 0]
    assert rows["monitoring-alert"] == [1, 0]
    assert not any(str(project.slug) in ep for ep in rows)  # route names, never raw paths
    table = {
        r["endpoint"]: r
        for r in endpoint_table(timezone.now() - dt.timedelta(hours=1), timezone.now() + dt.timedelta(minutes=1))
    }
    assert table["monitoring-dashboard"]["p50"] > 0


def test_counters_are_flushed_after_the_response_not_inside_it(db, rf, settings):
    from django.core.signals import request_finished
    from django.db import close_old_connections

    from apps.monitoring.middleware import RequestMetricsMiddleware

    settings.MONITORING_FLUSH_SECONDS = 0  # always due
    seen = []

    def view(request):
        seen.append(EndpointRollup.objects.count())
        from django.http import HttpResponse

        return HttpResponse("ok")

    middleware = RequestMetricsMiddleware(view)
    middleware(rf.get("/a"))
    middleware(rf.get("/b"))
    assert seen == [0, 0] and not EndpointRollup.objects.exists()  # nothing written while answering
    request_finished.disconnect(close_old_connections)  # as Django's test client does: keep the test's transaction
    try:
        request_finished.send(sender=None)  # what the server sends once the response is out
    finally:
        request_finished.connect(close_old_connections)
    assert EndpointRollup.objects.get(endpoint="unmatched").count == 2


def test_server_errors_are_counted(rf):
    from apps.monitoring.middleware import RequestMetricsMiddleware

    def boom(request):
        raise RuntimeError("boom")

    request = rf.get("/x")
    with pytest.raises(RuntimeError):
        RequestMetricsMiddleware(boom)(request)
    [(key, entry)] = counters.data.items()
    assert key[0] == "unmatched" and entry[0] == 1 and entry[1] == 1


def test_infra_sample_has_queues_workers_jobs_storage_and_health(project):
    from apps.datasets.models import ImportJob

    make_item(project)
    ImportJob.objects.create(project=project, status="failed")
    WorkerHeartbeat.objects.create(hostname="w-live", started_at=timezone.now(), last_seen=timezone.now())
    WorkerHeartbeat.objects.create(
        hostname="w-gone", started_at=timezone.now(), last_seen=timezone.now() - dt.timedelta(hours=1)
    )
    s = infra.infra_sample_take()
    assert set(s.queues) == set(infra.QUEUES)
    assert s.live_workers == 1 and {w["hostname"]: w["live"] for w in s.workers} == {"w-live": True, "w-gone": False}
    assert s.jobs["ImportJob"] == {"running": 0, "failed": 1} and "TrainingRun" in s.jobs
    assert s.storage["images"] > 0 and s.storage["artifacts"] == 0
    assert s.health["database"]["ok"] is True and "broker" in s.health
    infra.infra_sample_take()
    assert InfraSample.objects.count() == 1  # one per minute


def test_metrics_staff_or_bearer_token(project, people, settings, mv):
    log_predictions(mv, [{"latency_ms": 30}] * 4)
    settings.MONITORING_METRICS_TOKEN = "s3cret-token"
    assert Client().get("/metrics").status_code == 401
    member = Client()
    member.force_login(people["pm"])
    assert member.get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    r = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert r.status_code == 200
    text = r.content.decode()
    for name in (
        "mlportal_predictions_per_minute",
        "mlportal_prediction_latency_ms",
        "mlportal_celery_queue_depth",
        "mlportal_workers_live",
        "mlportal_jobs",
        "mlportal_storage_bytes",
        'mlportal_up{check="database"} 1.0',
    ):
        assert name in text, name
    assert f'project="{project.slug}"' in text
    people["pm"].is_staff = True
    people["pm"].save()
    settings.MONITORING_METRICS_TOKEN = ""
    staff = Client()
    staff.force_login(people["pm"])
    assert staff.get("/metrics").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_dashboard_charts_infrastructure_over_time(project, people):
    import json

    from apps.monitoring.views import dashboard_context

    WorkerHeartbeat.objects.create(
        hostname="w1", started_at=timezone.now(), last_seen=timezone.now() - dt.timedelta(seconds=5)
    )
    infra.infra_sample_take(now=timezone.now() - dt.timedelta(minutes=2))
    infra.infra_sample_take()
    ctx = dashboard_context(project, "1h")
    figs = {k: json.loads(v) for k, v in ctx["figures"].items()}
    assert [t["name"] for t in figs["infra_workers"]["data"]] == ["live workers"]
    assert len(figs["infra_workers"]["data"][0]["x"]) == 2
    assert figs["infra_heartbeats"]["data"][0]["name"] == "w1"
    assert {t["name"] for t in figs["infra_queues"]["data"]} == set(infra.QUEUES)
    assert {t["name"] for t in figs["infra_storage"]["data"]} == {"images", "thumbnails", "artifacts"}
    assert "database ok" in {t["name"] for t in figs["infra_health"]["data"]}
    # thresholds are drawn on the drift charts
    assert figs["psi"]["layout"]["shapes"][0]["y0"] == 0.25
