"""The registry API: every endpoint for a member with the role, a member without it (403) and an
outsider (404); four eyes, gate failures with clear messages, and rollback over HTTP."""

import io
import zipfile

import pytest

from apps.registry import services
from apps.registry.models import PromotionRequest
from tests.factories import approve_scope

from .conftest import make_run

pytestmark = pytest.mark.django_db
METRICS = {
    "n": 6,
    "accuracy": 1.0,
    "macro_f1": 1.0,
    "macro_precision": 1.0,
    "macro_recall": 1.0,
    "classes": ["defect", "good"],
    "confusion_matrix": [[3, 0], [0, 3]],
}


@pytest.fixture
def world(project, dv, people, register):
    """v1 in production, v2 registered with an open (gate-passed) request by the data scientist."""
    v1 = register(make_run(project, dv, metrics=METRICS))
    r1 = services.promotion_request_create(version=v1, user=people["ds"], note="first")
    services.promotion_request_approve(request=r1, user=people["manager"])
    v2 = register(make_run(project, dv, metrics=METRICS))
    r2 = services.promotion_request_create(version=v2, user=people["ds"], note="second")
    assert r2.gate_passed
    rm = v1.registered_model
    base = f"/api/v1/projects/{project.slug}/registry/"
    return {"v1": v1, "v2": v2, "req": r2, "rm": rm, "base": base, "m": f"{base}models/{rm.pk}/"}


def rows(r):
    body = r.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


def check(api, people, method, url, allowed, data=None, denied="labeler", ok=(200, 201)):
    """Outsider → 404, member without the role → 403, member with it → ``ok``. Returns the last response."""

    def call(user):
        client = api(user)
        return getattr(client, method)(url, data or {}, format="json") if method != "get" else client.get(url)

    assert call(people["outsider"]).status_code == 404
    if denied:
        r = call(people[denied])
        assert r.status_code == 403, r.content
    assert api().get(url).status_code in (401, 403)  # anonymous
    r = call(people[allowed] if isinstance(allowed, str) else allowed)
    assert r.status_code in ok, r.content
    return r


def test_models_list_and_register(api, people, world, project, dv, good_run):
    r = check(api, people, "get", world["base"] + "models/", "labeler", denied=None)
    assert rows(r)[0]["production"] == 1 and [v["number"] for v in rows(r)[0]["versions"]] == [2, 1]
    r = check(
        api,
        people,
        "post",
        world["base"] + "models/",
        "ds",
        data={"run": good_run.pk, "registered_model_name": "screws"},
    )
    assert r.json()["number"] == 3 and r.json()["classes"] == ["defect", "good"]
    r = api(people["ds"]).post(world["base"] + "models/", {"run": 99999, "registered_model_name": "x"}, format="json")
    assert r.status_code == 400 and "No training run 99999" in r.json()["run"][0]


def test_model_and_version_detail_with_lineage(api, people, world):
    check(api, people, "get", world["m"], "labeler", denied=None)
    r = check(api, people, "get", world["m"] + "versions/production/", "labeler", denied=None)
    body = r.json()
    assert body["number"] == 1 and body["lineage"]["dataset_version"]["number"] == world["v1"].dataset_version.number
    assert body["lineage"]["run"]["config"]["learning_rate"] == 0.001
    assert api(people["labeler"]).get(world["m"] + "versions/nosuch/").status_code == 404


def test_stage(api, people, world):
    r = check(api, people, "post", world["m"] + "versions/2/stage/", "manager", data={"stage": "staging"})
    assert r.json()["stage"] == "staging"
    r = api(people["ds"]).post(world["m"] + "versions/1/stage/", {"stage": "archived"}, format="json")
    assert r.status_code == 400 and "is in production" in r.json()["stage"][0]


def test_alias(api, people, world):
    r = check(api, people, "post", world["m"] + "aliases/", "ds", data={"name": "champion", "version": 1})
    assert r.json() == {"name": "champion", "version": 1}
    assert api(people["labeler"]).get(world["m"] + "versions/champion/").json()["number"] == 1


def test_bundle_download(api, people, world):
    r = check(api, people, "get", world["m"] + "versions/1/bundle/", "labeler", denied=None)
    assert r["Content-Type"] == "application/zip"
    assert "model.keras" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()


def test_request_promotion(api, people, world, project, dv, register):
    v3 = register(make_run(project, dv, metrics=METRICS))
    r = check(api, people, "post", world["m"] + "versions/3/promotion/", "ds", data={"note": "v3 please"})
    assert r.status_code == 201 and r.json()["gate_passed"] is True and r.json()["status"] == "open"
    assert {c["key"] for c in r.json()["gate"]["checks"]} >= {"champion", "data", "artifacts"}
    assert v3.promotion_requests.count() == 1


def test_requests_list_and_detail(api, people, world):
    r = check(api, people, "get", world["base"] + "requests/?status=open", "labeler", denied=None)
    assert [x["id"] for x in rows(r)] == [world["req"].pk]
    check(api, people, "get", world["base"] + f"requests/{world['req'].pk}/", "labeler", denied=None)


def test_approve_four_eyes_over_the_api(api, people, world, ds_manager, project, dv, register):
    url = world["base"] + f"requests/{world['req'].pk}/approve/"
    check(api, people, "post", url, "manager", denied="ds")
    world["v2"].refresh_from_db(), world["v1"].refresh_from_db()
    assert (world["v2"].stage, world["v1"].stage) == ("production", "archived")
    # A manager who is also the requester gets 403 with the reason.
    v3 = register(make_run(project, dv, metrics=METRICS), user=ds_manager)
    req = services.promotion_request_create(version=v3, user=ds_manager, note="mine")
    r = api(ds_manager).post(world["base"] + f"requests/{req.pk}/approve/", {}, format="json")
    assert r.status_code == 403 and "four eyes" in r.json()["detail"]
    assert PromotionRequest.objects.get(pk=req.pk).status == "open"


def test_reject(api, people, world):
    url = world["base"] + f"requests/{world['req'].pk}/reject/"
    assert api(people["manager"]).post(url, {"comment": ""}, format="json").json()["comment"] == [
        "Say why the request is rejected (the comment is required)."
    ]
    r = check(api, people, "post", url, "manager", denied="ds", data={"comment": "not yet"})
    assert r.json()["status"] == "rejected"


def test_withdraw(api, people, world):
    r = check(api, people, "post", world["base"] + f"requests/{world['req'].pk}/withdraw/", "ds", denied="manager")
    assert r.json()["status"] == "withdrawn"


def test_rollback_over_the_api(api, people, world):
    services.promotion_request_approve(request=world["req"], user=people["manager"])
    url = world["m"] + "rollback/"
    assert api(people["manager"]).post(url, {"reason": ""}, format="json").status_code == 400
    r = check(api, people, "post", url, "manager", denied="ds", data={"reason": "v2 flags good screws"})
    assert r.json()["number"] == 1 and r.json()["stage"] == "production"
    r = api(people["manager"]).post(url, {"reason": "again"}, format="json")
    assert r.status_code == 400 and "no earlier production version" in r.json()["detail"]


def test_gate_failures_come_back_with_clear_messages(api, people, world, project, dv, register):
    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.95}])
    bad = dict(METRICS, accuracy=0.5)
    register(make_run(project, dv, metrics=bad))
    r = api(people["ds"]).post(world["m"] + "versions/3/promotion/", {"note": "try"}, format="json")
    body = r.json()
    assert r.status_code == 201 and body["status"] == "open" and body["gate_passed"] is False
    assert body["gate"]["failures"] == [
        f"accuracy is 0.5 on the test split of dataset version v{dv.number}, which does not meet the target "
        "accuracy ≥ 0.95.",
        "accuracy 0.5 (candidate v3) vs 1 (production v1): worse than production; both were evaluated on the test "
        f"split of dataset version v{dv.number}; their stored test metrics are compared. It must be at least 1.",
    ]
    r = api(people["manager"]).post(world["base"] + f"requests/{body['id']}/approve/", {}, format="json")
    assert r.status_code == 400
    assert "only as an exception, with a written reason" in r.json()["exception_reason"][0]
    # Asked again (the gate runs anew): the gate-failed request is superseded, not a second open one.
    r = api(people["ds"]).post(world["m"] + "versions/3/promotion/", {"note": "again"}, format="json")
    assert r.status_code == 201 and PromotionRequest.objects.get(pk=body["id"]).status == "withdrawn"
    r = api(people["manager"]).post(
        world["base"] + f"requests/{r.json()['id']}/approve/",
        {"comment": "ok", "exception_reason": "Known regression; accepted for a day."},
        format="json",
    )
    assert r.status_code == 200, r.json()
    assert r.json()["status"] == "approved"
    assert r.json()["approvals"][0]["gate_exception"] == "Known regression; accepted for a day."


def test_settings(api, people, world):
    url = world["base"] + "settings/"
    r = check(api, people, "get", url, "labeler", denied=None)
    assert r.json()["required_approvals"] == 1
    r = check(
        api, people, "patch", url, "manager", denied="ds", data={"required_approvals": 2, "champion_margin": 0.01}
    )
    assert (r.json()["required_approvals"], r.json()["champion_margin"]) == (2, 0.01)
    r = api(people["manager"]).patch(url, {"required_approvals": 0, "bogus": 1}, format="json")
    assert r.status_code == 400 and "bogus" in r.json()


def test_webhooks(api, people, world):
    url = world["base"] + "webhooks/"
    r = check(api, people, "post", url, "manager", denied="ds", data={"url": "https://hooks.example.com/x"})
    assert len(r.json()["secret"]) >= 32
    r = check(api, people, "get", url, "manager", denied="ds")
    assert [h["url"] for h in rows(r)] == ["https://hooks.example.com/x"]
    r = api(people["manager"]).post(url, {"url": "not a url"}, format="json")
    assert r.status_code == 400 and "is not an http(s) URL" in r.json()["url"][0]


def test_notifications_are_the_callers_own(api, people, world):
    r = api(people["manager"]).get("/api/v1/notifications/?unread=1")
    assert r.status_code == 200 and {n["event"] for n in rows(r)} >= {"promotion.requested"}
    assert all(n["project"] == world["rm"].project.slug for n in rows(r))
    assert rows(api(people["outsider"]).get("/api/v1/notifications/")) == []
    assert api().get("/api/v1/notifications/").status_code in (401, 403)
    r = api(people["manager"]).post("/api/v1/notifications/", {}, format="json")
    assert r.json()["unread"] == 0


@pytest.mark.real_dispatch
def test_approving_over_http_queues_the_email_for_a_worker_and_sends_none_in_the_request(
    api, people, world, django_capture_on_commit_callbacks, monkeypatch, settings
):
    """The approval's email is a task message (with its queue's time limits), not a send inside the
    request: the response comes back with the outbox empty; the worker's task sends it, and retries
    the addresses the mail server refused."""
    from django.core import mail

    from apps.registry import notify as notify_mod
    from apps.registry import tasks

    published = []
    monkeypatch.setattr(
        tasks.send_emails, "apply_async", lambda args=(), kwargs=None, **opts: published.append((args, opts))
    )
    people["ds"].email, people["manager"].email = "ds@example.com", "manager@example.com"
    people["ds"].save(), people["manager"].save()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        r = api(people["manager"]).post(world["base"] + f"requests/{world['req'].pk}/approve/", {}, format="json")
    assert r.status_code == 200 and mail.outbox == []
    (subject, body, addresses), opts = published[0]
    assert "ds@example.com" in addresses and opts["soft_time_limit"] == 120 and opts["time_limit"] == 180
    tasks.send_emails.apply(args=(subject, body, addresses))  # what the worker does
    assert sorted(m.to[0] for m in mail.outbox) == sorted(addresses)

    # A mail server that refuses one address: the task retries that one alone.
    real = notify_mod.send_mail

    def flaky(subject, body, sender, to):
        if to == ["ds@example.com"]:
            raise OSError("connection refused")
        return real(subject, body, sender, to)

    monkeypatch.setattr(notify_mod, "send_mail", flaky)
    assert notify_mod.emails_send(subject="s", body="b", addresses=["ds@example.com", "manager@example.com"]) == [
        "ds@example.com"
    ]
    from celery.exceptions import Retry

    mail.outbox.clear()
    with pytest.raises(Retry):  # (in-process, the retries run at once and the last one gives up)
        tasks.send_emails.apply(args=("s", "b", ["ds@example.com", "manager@example.com"]), throw=True)
    assert [m.to for m in mail.outbox] == [["manager@example.com"]]  # sent once; only ds@ was retried
