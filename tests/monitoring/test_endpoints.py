"""Every monitoring page and API endpoint: a member with the role, a member without it (403), an
outsider (404)."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.monitoring import services
from apps.monitoring.models import Alert, AlertRule, RuleKind
from tests.factories import field_errors

from .conftest import log_predictions


@pytest.fixture
def alert(project, people):
    rule = services.alert_rule_create(
        project=project, user=people["pm"], data={"name": "No worker", "kind": RuleKind.WORKER_DOWN, "threshold": 1}
    )
    [a] = services.rules_evaluate(project=project)
    assert a.rule == rule
    return a


def client_for(user):
    c = Client()
    c.force_login(user)
    return c


def test_dashboard_every_member_reads_outsider_404(project, people, mv):
    log_predictions(mv, [{"input_stats": {"brightness": 90.0}, "confidence": 0.5}] * 5)
    url = reverse("monitoring-dashboard", args=[project.slug])
    for who in ("pm", "labeler", "reviewer", "ds", "manager"):
        r = client_for(people[who]).get(url + "?range=6h")
        assert r.status_code == 200, who
    body = r.content.decode()
    assert "monitoring-figures" in body and 'data-figure="psi"' in body and "screws v1" in body
    assert 'value="6h" selected' in body
    assert client_for(people["outsider"]).get(url).status_code == 404
    assert Client().get(url).status_code == 302  # to the login page


def test_rules_page_pm_and_ds_edit_others_403(project, people):
    url = reverse("monitoring-rules", args=[project.slug])
    for who in ("labeler", "manager"):
        c = client_for(people[who])
        assert c.get(url).status_code == 200
        assert c.post(url, {"name": "x", "kind": "error_rate"}).status_code == 403
        assert c.post(url + "defaults/").status_code == 403
    assert client_for(people["outsider"]).get(url).status_code == 404
    assert client_for(people["outsider"]).post(url + "defaults/").status_code == 404
    r = client_for(people["ds"]).post(
        url, {"name": "Errors", "kind": "error_rate", "threshold": "0.1", "window_minutes": "15"}
    )
    assert r.status_code == 302
    rule = AlertRule.objects.get(name="Errors")
    assert rule.params == {"window_minutes": 15} and rule.threshold == 0.1
    r = client_for(people["pm"]).post(url, {"name": "Bad", "kind": "error_rate", "threshold": "-1"})
    assert r.status_code == 400 and field_errors(r.content.decode(), "threshold") == [
        "Ensure this value is greater than or equal to 0."
    ]
    assert 'value="Bad"' in r.content.decode()
    assert client_for(people["labeler"]).post(f"{url}{rule.pk}/toggle/").status_code == 403
    assert client_for(people["pm"]).get(f"{url}{rule.pk}/toggle/").status_code == 405
    assert client_for(people["pm"]).post(f"{url}{rule.pk}/toggle/").status_code == 302
    rule.refresh_from_db()
    assert not rule.enabled
    assert client_for(people["pm"]).post(url + "defaults/").status_code == 302
    assert AlertRule.objects.filter(project=project).count() == 9  # the defaults, log loss included
    assert client_for(people["outsider"]).post(f"{url}{rule.pk}/delete/").status_code == 404
    assert client_for(people["pm"]).post(f"{url}{rule.pk}/delete/").status_code == 302
    assert not AlertRule.objects.filter(pk=rule.pk).exists()


def test_alert_page_managers_acknowledge_and_resolve(project, people, alert):
    url = reverse("monitoring-alert", args=[project.slug, alert.pk])
    for who in ("pm", "labeler", "ds"):
        c = client_for(people[who])
        assert c.get(url).status_code == 200
        assert c.post(url + "acknowledge/").status_code == 403
    assert client_for(people["outsider"]).get(url).status_code == 404
    assert client_for(people["outsider"]).post(url + "acknowledge/").status_code == 404
    m = client_for(people["manager"])
    assert "Acknowledge" in m.get(url).content.decode()
    assert m.post(url + "acknowledge/", {"note": "on it"}).status_code == 302
    r = m.post(url + "resolve/", {"note": ""})
    assert r.status_code == 400 and field_errors(r.content.decode(), "note")
    assert m.post(url + "resolve/", {"note": "worker restarted"}).status_code == 302
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert "worker restarted" in m.get(url).content.decode()


def test_api_summary_alerts_and_rules(project, people, api, mv, alert):
    log_predictions(mv, [{"predicted_class": "good", "latency_ms": 12}] * 3)
    base = f"/api/v1/projects/{project.slug}/monitoring/"
    for who in ("labeler", "manager"):
        r = api(people[who]).get(base + "summary/?range=1h")
        assert r.status_code == 200
    body = r.json()
    assert body["predictions"][0]["count"] == 3 and body["serving"]["count"] == 3 and body["open_alerts"] == 1
    assert api(people["labeler"]).get(base + "summary/?version=abc").status_code == 400
    for path in ("summary/", "rules/", "alerts/", f"alerts/{alert.pk}/", f"rules/{alert.rule_id}/"):
        assert api(people["outsider"]).get(base + path).status_code == 404, path
        assert api(people["reviewer"]).get(base + path).status_code == 200, path
    detail = api(people["labeler"]).get(base + f"alerts/{alert.pk}/").json()
    assert detail["status"] == "firing" and detail["events"][0]["kind"] == "opened"
    assert api(people["labeler"]).get(base + "alerts/?status=open").json()[0]["id"] == alert.pk

    new = {"name": "p95", "kind": "latency_p95", "threshold": 250, "params": {"endpoint": "serving"}}
    assert api(people["manager"]).post(base + "rules/", new, format="json").status_code == 403
    assert api(people["outsider"]).post(base + "rules/", new, format="json").status_code == 404
    r = api(people["ds"]).post(base + "rules/", new, format="json")
    assert r.status_code == 201 and r.json()["threshold"] == 250
    rid = r.json()["id"]
    bad = api(people["pm"]).post(base + "rules/", {"name": "x", "kind": "nope"}, format="json")
    assert bad.status_code == 400 and "kind" in bad.json()
    assert api(people["labeler"]).patch(base + f"rules/{rid}/", {"threshold": 1}, format="json").status_code == 403
    assert api(people["outsider"]).patch(base + f"rules/{rid}/", {"threshold": 1}, format="json").status_code == 404
    r = api(people["pm"]).patch(base + f"rules/{rid}/", {"threshold": 300, "retrain": True}, format="json")
    assert r.status_code == 200 and r.json()["threshold"] == 300 and r.json()["retrain"] is True
    assert api(people["manager"]).delete(base + f"rules/{rid}/").status_code == 403
    assert api(people["outsider"]).delete(base + f"rules/{rid}/").status_code == 404
    assert api(people["ds"]).delete(base + f"rules/{rid}/").status_code == 204


def test_api_evaluate_and_live_sample_need_pm_or_ds(project, people, api):
    base = f"/api/v1/projects/{project.slug}/monitoring/"
    for path in ("rules/evaluate/", "live-sample/"):
        assert api(people["manager"]).post(base + path).status_code == 403
        assert api(people["outsider"]).post(base + path).status_code == 404
        assert api(people["ds"]).post(base + path).status_code == 200
    assert api(people["pm"]).post(base + "live-sample/").json() == {"queued": 0}


def test_api_acknowledge_resolve_managers_only(project, people, api, alert):
    base = f"/api/v1/projects/{project.slug}/monitoring/alerts/{alert.pk}/"
    for action in ("acknowledge/", "resolve/"):
        assert api(people["ds"]).post(base + action, {"note": "x"}, format="json").status_code == 403
        assert api(people["outsider"]).post(base + action, {"note": "x"}, format="json").status_code == 404
    r = api(people["manager"]).post(base + "acknowledge/", {}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    r = api(people["manager"]).post(base + "acknowledge/", {}, format="json")
    assert r.status_code == 400  # compare-and-set: it is no longer firing
    assert api(people["manager"]).post(base + "resolve/", {"note": ""}, format="json").status_code == 400
    r = api(people["manager"]).post(base + "resolve/", {"note": "fixed"}, format="json")
    assert r.status_code == 200 and r.json()["resolved_by"] == "manager"
    assert Alert.objects.get(pk=alert.pk).status == "resolved"


def test_project_page_shows_the_monitoring_stage(project, people, alert):
    from apps.core.stages import project_stages

    stage = next(s for s in project_stages(project) if s["key"] == "monitoring")
    assert stage["state"] == "attention" and stage["summary"] == "1 alert firing"
    assert stage["url"] == reverse("monitoring-dashboard", args=[project.slug])
    services.alert_resolve(alert=alert, user=people["manager"], note="ok")
    stage = next(s for s in project_stages(project) if s["key"] == "monitoring")
    assert stage["summary"] == "all quiet"
