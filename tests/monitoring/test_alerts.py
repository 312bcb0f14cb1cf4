import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.core.models import AuditEvent, WorkerHeartbeat
from apps.monitoring import services
from apps.monitoring.middleware import RequestCounters
from apps.monitoring.models import Alert, AlertRule, RuleKind
from apps.monitoring.rollups import minute_of


def rule(project, people, kind, threshold, **params):
    return services.alert_rule_create(
        project=project, user=people["pm"], data={"name": kind, "kind": kind, "threshold": threshold, "params": params}
    )


def test_rule_input_is_checked_with_field_messages(project, people):
    with pytest.raises(ValidationError) as exc:
        services.alert_rule_create(
            project=project,
            user=people["ds"],
            data={"name": "", "kind": "nonsense", "threshold": "lots", "params": {"window": 5}},
        )
    errors = exc.value.message_dict
    assert set(errors) == {"name", "kind", "threshold", "params"}
    assert "nonsense" in errors["kind"][0] and "window" in errors["params"][0]
    with pytest.raises(ValidationError) as exc:
        services.alert_rule_create(
            project=project, user=people["ds"], data={"name": "acc", "kind": RuleKind.LIVE_ACCURACY, "threshold": 95}
        )
    assert "between 0 and 1" in exc.value.message_dict["threshold"][0]
    assert not AlertRule.objects.exists()
    r = services.alert_rule_create(
        project=project, user=people["ds"], data={"name": "p95", "kind": RuleKind.LATENCY_P95}
    )
    assert r.threshold == services.DEFAULTS[RuleKind.LATENCY_P95]  # empty threshold → the kind's default
    with pytest.raises(PermissionDenied):
        services.alert_rule_create(project=project, user=people["manager"], data={"name": "x", "kind": "error_rate"})


def _errors(endpoint, count, errors, ms=30.0, at=None):
    counters = RequestCounters()
    for i in range(count):
        counters.record(endpoint, minute_of(at or timezone.now()), ms, i < errors)
    counters.flush()


def test_error_rate_alert_lifecycle_is_compare_and_set_and_audited(project, people):
    r = rule(project, people, RuleKind.ERROR_RATE, 0.05, window_minutes=10, min_n=20)
    _errors("api-predict", 100, 2)
    assert services.rules_evaluate(project=project) == []
    _errors("api-predict", 100, 30)
    [alert] = services.rules_evaluate(project=project)
    assert alert.status == "firing" and alert.rule == r and 0.15 < alert.value < 0.17
    assert AuditEvent.objects.filter(action="monitoring.alert_fired", object_id=str(alert.pk)).exists()

    with pytest.raises(PermissionDenied):
        services.alert_acknowledge(alert=alert, user=people["ds"])
    services.alert_acknowledge(alert=alert, user=people["manager"], note="looking")
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == people["manager"]
    with pytest.raises(ValidationError):  # a stale second acknowledgement loses the compare-and-set
        services.alert_acknowledge(alert=alert, user=people["manager"])
    with pytest.raises(ValidationError) as exc:
        services.alert_resolve(alert=alert, user=people["manager"], note="  ")
    assert "note" in exc.value.message_dict
    services.alert_resolve(alert=alert, user=people["manager"], note="bad deploy rolled back")
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolution_note == "bad deploy rolled back"
    with pytest.raises(ValidationError):
        services.alert_resolve(alert=alert, user=people["manager"], note="again")
    assert [e.kind for e in alert.events.all()][:1] == ["opened"]
    assert {"acknowledged", "resolved"} <= {e.kind for e in alert.events.all()}
    assert AuditEvent.objects.filter(action="monitoring.alert_resolved", actor=people["manager"]).exists()
    # still breaching after resolution: a new incident opens
    [again] = services.rules_evaluate(project=project)
    assert again.pk != alert.pk


def test_recovery_is_noted_on_the_open_alert(project, people):
    rule(project, people, RuleKind.ERROR_RATE, 0.05, window_minutes=5, min_n=10)
    old = timezone.now() - dt.timedelta(minutes=30)
    _errors("api-predict", 20, 20, at=old)
    [alert] = services.rules_evaluate(project=project, now=old + dt.timedelta(minutes=1))
    _errors("api-predict", 50, 0)
    assert services.rules_evaluate(project=project) == []
    alert.refresh_from_db()
    assert alert.status == "firing" and alert.recovered_at is not None
    assert alert.events.filter(kind="recovered").exists()


def test_latency_worker_and_queue_rules(project, people, mv):
    from .conftest import log_predictions

    rule(project, people, RuleKind.LATENCY_P95, 300, min_n=10)
    rule(project, people, RuleKind.WORKER_DOWN, 1)
    backlog = rule(project, people, RuleKind.QUEUE_BACKLOG, 1000)
    log_predictions(mv, [{"latency_ms": 50}] * 80 + [{"latency_ms": 900}] * 20)
    opened = {a.rule.kind: a for a in services.rules_evaluate(project=project)}
    assert set(opened) == {RuleKind.LATENCY_P95, RuleKind.WORKER_DOWN}
    assert opened[RuleKind.LATENCY_P95].value > 300
    assert opened[RuleKind.WORKER_DOWN].value == 0
    backlog.refresh_from_db()
    assert backlog.last_value is not None and backlog.last_value < 1000
    WorkerHeartbeat.objects.create(
        hostname="w1", started_at=timezone.now(), last_seen=timezone.now(), queues=["default"]
    )
    services.rules_evaluate(project=project)
    assert Alert.objects.get(rule__kind=RuleKind.WORKER_DOWN).recovered_at is not None


def test_notifications_go_through_the_registry_when_present(project, people, monkeypatch):
    from apps.monitoring.services import alerts

    sent = []
    monkeypatch.setattr(alerts, "notify", lambda **kw: sent.append(kw))  # the registry's notify, as imported
    rule(project, people, RuleKind.WORKER_DOWN, 1)
    [alert] = services.rules_evaluate(project=project)
    assert sent and sent[0]["event"] == "alert.fired" and sent[0]["obj"] == alert and sent[0]["project"] == project
    assert f"/monitoring/alerts/{alert.pk}/" in sent[0]["url"]
    assert alert.events.filter(kind="notified").exists()


def test_a_failing_notifier_leaves_the_timeline_and_audit_intact(project, people, monkeypatch):
    from apps.monitoring.services import alerts

    def down(**kwargs):
        raise ConnectionError("mail server down")

    monkeypatch.setattr(alerts, "notify", down)  # the registry's notify, as the alerts import it
    rule(project, people, RuleKind.WORKER_DOWN, 1)
    [alert] = services.rules_evaluate(project=project)
    assert not alert.events.filter(kind="notified").exists()
    assert alert.events.filter(kind="opened").exists()
    assert AuditEvent.objects.filter(action="monitoring.alert_fired").exists()


def test_disabled_rules_are_not_evaluated(project, people):
    r = rule(project, people, RuleKind.WORKER_DOWN, 1)
    services.alert_rule_update(rule=r, user=people["ds"], data={"enabled": False})
    assert services.rules_evaluate(project=project) == []


def test_beat_runs_the_monitoring_tick_every_minute(project, people, mv):
    from apps.core.storage import blob_put
    from apps.monitoring.models import InfraSample, LiveSample
    from mlportal.celery import app
    from tests.factories import png_bytes

    from .conftest import log_predictions

    entry = app.conf.beat_schedule["monitoring-tick"]
    assert entry["task"] == "apps.monitoring.tasks.monitoring_tick" and entry["schedule"] == 60.0
    rule(project, people, RuleKind.WORKER_DOWN, 1)
    blob = blob_put(png_bytes(seed=77), ext="png", content_type="image/png")
    log_predictions(mv, [{"confidence": 0.2, "input_blob": blob}])
    from apps.monitoring.tasks import monitoring_tick

    monitoring_tick()  # the task body, run here
    assert InfraSample.objects.count() == 1
    assert Alert.objects.filter(project=project, status="firing").count() == 1
    assert LiveSample.objects.filter(project=project, reason="low_confidence").count() == 1


def test_time_range_picks_the_rollups_inside_it(project, people, api, mv):
    from .conftest import log_predictions

    log_predictions(mv, [{}] * 3, at=timezone.now() - dt.timedelta(hours=3))
    log_predictions(mv, [{}] * 2)
    base = f"/api/v1/projects/{project.slug}/monitoring/summary/"
    assert api(people["labeler"]).get(base + "?range=1h").json()["predictions"][0]["count"] == 2
    assert api(people["labeler"]).get(base + "?range=6h").json()["predictions"][0]["count"] == 5
    assert api(people["labeler"]).get(base + "?range=bogus").json()["range"] == "24h"


def test_the_tick_keeps_drift_reports_for_projects_without_rules(project, mv):
    from apps.monitoring.models import DriftReport
    from apps.monitoring.services import monitoring_tick

    from .conftest import log_predictions

    log_predictions(mv, [{"input_stats": {"brightness": 80.0}}] * 3)
    monitoring_tick()
    assert DriftReport.objects.get(model_version=mv).n == 3


def test_just_after_midnight_only_versions_that_served_yesterday_get_a_report_for_it(project, mv):
    """In a day's first 10 minutes the tick closes yesterday's reports: a version that served only
    today gets no empty report for yesterday (the drift tests failed between 00:00 and 00:10 UTC)."""
    import datetime as dt

    from django.utils import timezone

    from apps.monitoring.models import DriftReport
    from apps.monitoring.services import drift_refresh

    from .conftest import log_predictions

    now = timezone.now().replace(hour=0, minute=3, second=0, microsecond=0)
    log_predictions(mv, [{"input_stats": {"brightness": 80.0}}] * 3, at=now - dt.timedelta(minutes=1))
    drift_refresh(project=project, now=now)
    assert list(DriftReport.objects.filter(model_version=mv).values_list("day", "n")) == [(now.date(), 3)]
