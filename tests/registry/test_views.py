"""Registry pages: every page and form for a member with the role, one without it (403) and an
outsider (404); what a manager sees (side by side, gate ticks and crosses, lineage)."""

import pytest
from django.test import Client

from apps.labeling.models import Annotation
from apps.registry import gate, services
from apps.registry.models import Notification, Webhook
from tests.factories import approve_scope, field_errors, label_classes, set_label

from .conftest import make_run
from .test_api import METRICS

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project, dv, people, register):
    v1 = register(make_run(project, dv, metrics=METRICS))
    services.promotion_request_approve(
        request=services.promotion_request_create(version=v1, user=people["ds"], note="first"), user=people["manager"]
    )
    v2 = register(make_run(project, dv, metrics=dict(METRICS, accuracy=0.99, confusion_matrix=[[3, 0], [1, 2]])))
    services.registry_settings_update(project=project, user=people["manager"], champion_margin=0.02)
    req = services.promotion_request_create(version=v2, user=people["ds"], note="more data")
    assert req.gate_passed, req.gate["failures"]
    p = f"/p/{project.slug}/registry/"
    return {"v1": v1, "v2": v2, "req": req, "p": p, "m": f"{p}models/{v1.registered_model_id}/"}


def client(user=None):
    c = Client()
    if user is not None:
        c.force_login(user)
    return c


def check(people, method, url, allowed, data=None, denied="labeler", ok=(200, 302)):
    call = (lambda u: client(u).post(url, data or {})) if method == "post" else (lambda u: client(u).get(url))
    assert call(people["outsider"]).status_code == 404
    if denied:
        assert call(people[denied]).status_code == 403
    anon = call(None)
    assert anon.status_code == 302 and "/login/" in anon["Location"]
    r = call(people[allowed] if isinstance(allowed, str) else allowed)
    assert r.status_code in ok, r.content[:500]
    return r


def test_index_page(people, world, good_run):
    r = check(people, "get", world["p"], "labeler", denied=None)
    html = r.content.decode()
    assert "1 promotion request awaiting approval" in html and "register-form" not in html
    assert "register-form" in client(people["ds"]).get(world["p"]).content.decode()


def test_register_form(people, world, good_run):
    r = check(people, "post", world["p"] + "register/", "ds", data={"run": good_run.pk, "name": "screws"})
    assert r["Location"].endswith("/versions/3/")
    r = client(people["ds"]).post(world["p"] + "register/", {"run": good_run.pk, "name": "bad/name"}, follow=True)
    assert "already registered" in r.content.decode() or "letters, digits" in r.content.decode()


def test_model_page_and_rollback(people, world):
    r = check(people, "get", world["m"], "labeler", denied=None)
    assert "rollback-form" not in r.content.decode()
    services.promotion_request_approve(request=world["req"], user=people["manager"])
    assert "Roll back to v1" in client(people["manager"]).get(world["m"]).content.decode()
    r = check(people, "post", world["m"] + "rollback/", "manager", denied="ds", data={"reason": "regression"})
    world["v1"].refresh_from_db()
    assert world["v1"].stage == "production"


def test_version_page_shows_metrics_lineage_and_history(people, world, project, dv):
    good, defect = label_classes(project)
    entries = list(dv.entries.select_related("item")[:3])
    for e in entries:
        set_label(e.item, good, user=people["labeler"])
    Annotation.objects.create(item=entries[0].item, user=people["reviewer"], label_class=good)
    from apps.profiling.models import AssertionResult

    AssertionResult.objects.create(
        run=dv.profile_runs.get(),
        check_name="min_per_class",
        title="At least 3 per class",
        severity="blocking",
        passed=True,
        measured=3,
        bound=">= 3",
    )
    r = check(people, "get", world["m"] + "versions/1/", "labeler", denied=None)
    html = r.content.decode()
    assert 'id="version-stage">Production' in html
    assert "learning_rate=0.001" in html and f"v{dv.number}" in html
    assert "labeler — 3 labels (labeler)" in html and "reviewer — 1 annotation (submitted)" in html
    assert "Profile #" in html and "Confusion matrix of v1" in html
    assert '<span style="color:var(--ok)">✔</span> At least 3 per class <span class="muted">(blocking)' in html
    assert "first" in html or "manager" in html  # the stage history: who moved it
    v2 = client(people["ds"]).get(world["m"] + "versions/2/").content.decode()
    assert "An open request awaits approval" in v2


def test_version_forms(people, world, project, dv, register):
    register(make_run(project, dv, metrics=METRICS))
    base = world["m"] + "versions/3/"
    check(people, "post", base + "stage/", "manager", data={"stage": "staging", "reason": "try"})
    check(people, "post", base + "alias/", "ds", data={"name": "challenger"})
    r = check(people, "post", base + "promote/", "ds", denied="manager", data={"note": "v3"})
    assert "/registry/requests/" in r["Location"]


def test_bundle_download_page(people, world):
    r = check(people, "get", world["m"] + "versions/1/bundle.zip", "labeler", denied=None)
    assert r["Content-Type"] == "application/zip" and r.content[:2] == b"PK"


def test_inbox_and_request_page_for_a_manager(people, world):
    r = check(people, "get", world["p"] + "inbox/", "labeler", denied=None)
    assert f'data-request="{world["req"].pk}"' in r.content.decode()
    url = world["p"] + f"requests/{world['req'].pk}/"
    html = check(people, "get", url, "labeler", denied=None).content.decode()
    assert "decide-form" not in html
    html = client(people["manager"]).get(url).content.decode()
    assert "decide-form" in html and "✔ Passed" in html
    assert "Candidate v2" in html and "Production v1" in html and "-1.0 pt" in html  # side by side, with the delta
    assert html.count('class="gate-pass"') == 4 and "their stored test metrics" in html
    assert "four-eyes" not in html


def test_request_page_shows_crosses_and_four_eyes(people, world, project, dv, register, ds_manager):
    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.999}])
    v = register(make_run(project, dv, metrics=dict(METRICS, accuracy=0.9)), user=ds_manager)
    req = services.promotion_request_create(version=v, user=ds_manager, note="mine")
    html = client(ds_manager).get(world["p"] + f"requests/{req.pk}/").content.decode()
    assert "✘ Failed" in html and html.count('class="gate-fail"') == 2
    assert "does not meet the target accuracy ≥ 0.999" in html


def test_decision_forms(people, world, ds_manager):
    req = world["req"]
    base = world["p"] + f"requests/{req.pk}/"
    check(people, "post", base + "reject/", "manager", denied="ds", data={"comment": "no"})
    req.refresh_from_db()
    assert req.status == "rejected"
    req2 = services.promotion_request_create(version=world["v2"], user=people["ds"], note="again")
    check(people, "post", world["p"] + f"requests/{req2.pk}/withdraw/", "ds", denied="manager")
    req3 = services.promotion_request_create(version=world["v2"], user=people["ds"], note="third")
    check(people, "post", world["p"] + f"requests/{req3.pk}/approve/", "manager", denied="ds", data={"comment": "ok"})
    world["v2"].refresh_from_db()
    assert world["v2"].stage == "production"


def test_requester_who_is_manager_cannot_approve_in_the_page(people, world, project, dv, register, ds_manager):
    v = register(make_run(project, dv, metrics=METRICS), user=ds_manager)
    req = services.promotion_request_create(version=v, user=ds_manager, note="mine")
    url = world["p"] + f"requests/{req.pk}/"
    html = client(ds_manager).get(url).content.decode()
    assert "decide-form" not in html and 'id="four-eyes"' in html
    r = client(ds_manager).post(url + "approve/", {"comment": "sneaky"})
    assert r.status_code == 403
    v.refresh_from_db()
    assert v.stage == "none"


def test_settings_page(people, world, project):
    html = check(people, "get", world["p"] + "settings/", "labeler", denied=None).content.decode()
    assert "settings-form" not in html and "1 manager approval required" in html
    check(
        people,
        "post",
        world["p"] + "settings/",
        "manager",
        denied="ds",
        data={"required_approvals": "2", "champion_margin": "0.02", "champion_metric": "macro_f1"},
    )
    # Each error sits beside its field; what was typed stays; nothing is saved from a refused form.
    r = client(people["manager"]).post(
        world["p"] + "settings/", {"required_approvals": "x", "champion_margin": "0.9", "champion_metric": "accuracy"}
    )
    html = r.content.decode()
    assert r.status_code == 400 and 'value="x"' in html
    assert field_errors(html, "required_approvals") == ["Approvals required must be a whole number from 1 to 5."]
    r = client(people["manager"]).post(
        world["p"] + "settings/", {"required_approvals": "3", "champion_margin": "0.9", "champion_metric": "accuracy"}
    )
    assert r.status_code == 400 and field_errors(r.content.decode(), "champion_margin") == [
        "champion_margin must be a number from 0 to 0.5 (e.g. 0.01 = one point)."
    ]
    assert gate.settings_for(project).required_approvals == 2
    # Webhooks: their own forms and views (manager only), not a hidden field on the settings form.
    check(
        people,
        "post",
        world["p"] + "settings/webhooks/",
        "manager",
        denied="ds",
        data={"url": "https://hooks.example.com/a"},
    )
    html = client(people["manager"]).get(world["p"] + "settings/").content.decode()
    assert "https://hooks.example.com/a" in html
    r = client(people["manager"]).post(world["p"] + "settings/webhooks/", {"url": ""})
    assert r.status_code == 400 and field_errors(r.content.decode(), "url") == ["This field is required."]
    hook = Webhook.objects.get()
    check(people, "post", world["p"] + f"settings/webhooks/{hook.pk}/delete/", "manager", denied="ds")
    assert not Webhook.objects.exists()


def test_notifications_page(people, world):
    r = client(None).get("/notifications/")
    assert r.status_code == 302
    html = client(people["manager"]).get("/notifications/").content.decode()
    assert "asks to promote screws v2" in html and "unread" in html
    assert "asks to promote" not in client(people["outsider"]).get("/notifications/").content.decode()
    r = client(people["manager"]).post("/notifications/", {"id": ["x"]})
    assert r.status_code == 400 and field_errors(r.content.decode()) == ["Not a notification id: x."]
    client(people["manager"]).post("/notifications/")
    assert not Notification.objects.filter(user=people["manager"], read_at__isnull=True).exists()


def test_following_a_notification_marks_it_read_and_stays_on_the_portal(people, world):
    note = Notification.objects.filter(user=people["manager"], url__startswith="/").first()
    outside = Notification.objects.create(
        project=note.project, user=people["manager"], event="x", message="m", url="https://evil.example.com/"
    )
    html = client(people["manager"]).get("/notifications/").content.decode()
    assert f'href="/notifications/{note.pk}/open/"' in html
    assert client(people["ds"]).get(f"/notifications/{note.pk}/open/").status_code == 404  # not theirs
    assert client(None).get(f"/notifications/{note.pk}/open/").status_code == 302  # to the login page
    assert Notification.objects.get(pk=note.pk).read_at is None
    r = client(people["manager"]).get(f"/notifications/{note.pk}/open/")
    assert r.status_code == 302 and r["Location"] == note.url
    assert Notification.objects.get(pk=note.pk).read_at is not None
    r = client(people["manager"]).get(f"/notifications/{outside.pk}/open/")
    assert r["Location"] == "/notifications/" and Notification.objects.get(pk=outside.pk).read_at is not None


def test_models_for_dataset_version_snippet_and_stage_state(people, world, project, dv):
    from django.template import Context, Template

    from apps.registry.selectors import models_for_dataset_version, registry_stage_state

    assert [v.number for v in models_for_dataset_version(dv)] == [2, 1]
    html = Template("{% load registry_tags %}{% models_for_dataset_version version %}").render(Context({"version": dv}))
    assert (
        f"Models trained on v{dv.number}" in html
        and f"/registry/models/{world['v1'].registered_model_id}/versions/1/" in html
    )
    state = registry_stage_state(project)
    assert (state.state, state.summary) == ("in_progress", "screws v1 in production; 1 request awaiting approval")
    services.promotion_request_approve(request=world["req"], user=people["manager"])
    assert registry_stage_state(project).summary == "screws v2 in production"
    detail = client(people["labeler"]).get(f"/p/{project.slug}/").content.decode()
    assert "screws v2 in production" in detail


def test_a_failed_gate_shows_next_steps_and_an_exception_form(people, world, project, dv, register):
    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.999}])
    v = register(make_run(project, dv, metrics=dict(METRICS, accuracy=0.9)))
    req = services.promotion_request_create(version=v, user=people["ds"], note="close")
    url = world["p"] + f"requests/{req.pk}/"
    html = client(people["ds"]).get(url).content.decode()
    assert 'id="gate-failed-badge"' in html and 'id="next-steps"' in html
    assert "does not meet the target accuracy ≥ 0.999" in html
    for step in (
        "Relabel the images this model got wrong",
        "Retrain",
        "the PM changes them in the scope",
        "approve this request as an exception",
    ):
        assert step in html
    assert f"/p/{project.slug}/training/runs/{v.run_id}/evaluation/" in html
    assert "decide-form" not in html  # a data scientist does not decide
    inbox = client(people["manager"]).get(world["p"] + "inbox/").content.decode()
    assert f'data-request="{req.pk}"' in inbox and "✘ gate failed" in inbox
    html = client(people["manager"]).get(url).content.decode()
    assert 'id="exception-reason"' in html and "Approve as an exception" in html
    r = client(people["manager"]).post(url + "approve/", {"comment": "ok"}, follow=True)
    assert "only as an exception, with a written reason" in r.content.decode()
    v.refresh_from_db()
    assert v.stage == "none"
    r = client(people["manager"]).post(
        url + "approve/", {"comment": "ok", "exception_reason": "Trial on line 2 only."}, follow=True
    )
    assert "Approved" in r.content.decode()
    v.refresh_from_db()
    assert v.stage == "production"
    page = client(people["labeler"]).get(world["m"] + f"versions/{v.number}/").content.decode()
    assert 'id="gate-exceptions"' in page and "Trial on line 2 only." in page and "manager" in page


def test_a_draft_with_changed_targets_shows_as_awaiting_approval(people, world, project):
    from apps.projects.services import scope_update

    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.95}])
    url = world["p"] + f"requests/{world['req'].pk}/"
    assert 'id="targets-pending"' not in client(people["manager"]).get(url).content.decode()
    scope_update(
        project=project,
        user=people["pm"],
        data={**project.scope_snapshot(), "measurement": [{"metric": "accuracy", "comparator": ">=", "target": 0.6}]},
    )
    html = client(people["manager"]).get(url).content.decode()
    assert 'id="targets-pending"' in html and "Targets awaiting approval" in html and "accuracy ≥ 0.6" in html


def test_a_submitted_scope_reaches_the_managers_inbox_and_notifications(
    people, world, project, django_capture_on_commit_callbacks
):
    from apps.projects.services import scope_submit

    project.dataset, project.dataset_link, project.model, project.code_language = "d", "https://x.org", "m", "py"
    project.measurement, project.delivery = [{"metric": "accuracy", "comparator": ">=", "target": 0.9}], ["API"]
    project.scope_status = "draft"
    project.save()
    assert 'id="scope-awaiting"' not in client(people["manager"]).get(world["p"] + "inbox/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        scope_submit(project=project, user=people["pm"])
    html = client(people["manager"]).get(world["p"] + "inbox/").content.decode()
    assert 'id="scope-awaiting"' in html and "Review the scope" in html
    note = Notification.objects.get(event="scope.submitted")
    assert note.user == people["manager"] and note.url == f"/p/{project.slug}/scope/"
    assert "pm submitted the scope" in note.message
