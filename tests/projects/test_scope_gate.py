"""Scope approval and the suitability verdict gate training and promotion, unless a manager records
an override with a reason (audited)."""

import pytest
from django.core.exceptions import ValidationError

from apps.core.models import AuditEvent
from apps.projects import services
from tests.factories import field_errors

pytestmark = pytest.mark.django_db


def _run(project, people, version):
    from apps.training.services import training_run_create

    return training_run_create(
        project=project,
        user=people["ds"],
        dataset_version=version,
        config={"architecture": "tiny_cnn", "image_size": 32, "channels": 1, "epochs": 1},
    )


@pytest.fixture
def version(project):
    from tests.factories import make_item, make_version, mark_profiled

    entries = [(make_item(project), split, label) for split in ("train", "val", "test") for label in ("good", "defect")]
    v = make_version(project, entries)
    mark_profiled(v)
    return v


def test_a_draft_scope_refuses_training_with_the_reason_until_approved_or_overridden(project, people, version, api):
    project.scope_status = "draft"
    project.save()
    with pytest.raises(ValidationError) as exc:
        _run(project, people, version)
    assert "Training refused: the project's scope is draft and has never been approved" in str(exc.value)
    url = f"/api/v1/projects/{project.slug}/training/runs/"
    body = {"dataset_version": version.number, "config": {"architecture": "tiny_cnn", "image_size": 32, "epochs": 1}}
    r = api(people["ds"]).post(url, body, format="json")
    assert r.status_code == 400 and "scope is draft and has never been approved" in r.json()["scope"][0]
    assert api(people["ds"]).get(f"/api/v1/projects/{project.slug}/").json()["scope_gate"]["open"] is False
    # Only a manager overrides, with a reason; the audit log keeps it; then training may go on.
    override = f"/api/v1/projects/{project.slug}/scope/override/"
    assert api(people["pm"]).post(override, {"reason": "pilot"}, format="json").status_code == 403
    assert api(people["outsider"]).post(override, {"reason": "pilot"}, format="json").status_code == 404
    assert api(people["manager"]).post(override, {"reason": " "}, format="json").status_code == 400
    r = api(people["manager"]).post(override, {"reason": "Line 2 pilot before the scope review"}, format="json")
    assert r.status_code == 200 and r.json()["scope_gate"]["override"]["by"] == "manager"
    event = AuditEvent.objects.get(project=project, action="scope.gate_overridden")
    assert event.actor == people["manager"] and "Line 2 pilot" in event.reason
    project.refresh_from_db()
    assert _run(project, people, version).status == "queued"


def test_a_scope_judged_unsuited_refuses_promotion_too(project, people):
    project.checklist = {"ml_suited": {"answer": "no", "note": "a rule would do"}}
    project.save()
    why = services.scope_gate(project)
    assert "not suited to ML" in why
    with pytest.raises(ValidationError, match="A promotion request refused"):
        services.scope_gate_require(project, "A promotion request")


def test_a_draft_after_an_approval_keeps_the_gate_open_under_the_approved_revision(project, people):
    from tests.factories import approve_scope

    project.scope_status = "draft"
    project.save()
    assert services.scope_gate(project)
    approve_scope(project)
    services.scope_update(project=project, user=people["pm"], data={"goal": "A sharper goal"})
    project.refresh_from_db()
    assert project.scope_status == "draft" and services.scope_gate(project) == ""


def test_approving_the_scope_opens_the_gate_and_retires_the_override(project, people):
    project.scope_status = "submitted"
    project.save()
    services.scope_gate_override(project=project, user=people["manager"], reason="pilot")
    assert services.scope_gate(project) == ""
    services.scope_approve(project=project, user=people["manager"])
    project.refresh_from_db()
    assert project.scope_override_at is None and services.scope_gate(project) == ""


def test_the_scope_page_shows_the_gate_and_the_managers_override_form(client, project, people):
    project.scope_status = "draft"
    project.save()
    client.force_login(people["ds"])
    html = client.get(f"/p/{project.slug}/scope/").content.decode()
    assert 'id="scope-gate"' in html and "refused" in html and 'id="override-form"' not in html
    client.force_login(people["manager"])
    html = client.get(f"/p/{project.slug}/scope/").content.decode()
    assert 'id="override-form"' in html
    r = client.post(f"/p/{project.slug}/scope/override/", {"reason": ""})
    assert r.status_code == 400 and field_errors(r.content.decode(), "reason")
    client.force_login(people["pm"])
    assert client.post(f"/p/{project.slug}/scope/override/", {"reason": "x"}).status_code == 403
    client.force_login(people["manager"])
    assert client.post(f"/p/{project.slug}/scope/override/", {"reason": "pilot"}).status_code == 302
    assert (
        "by a manager&#x27;s override" in client.get(f"/p/{project.slug}/scope/").content.decode()
        or "override" in client.get(f"/p/{project.slug}/scope/").content.decode()
    )
