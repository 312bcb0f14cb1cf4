import pytest

from apps.projects import services
from tests.factories import field_errors

pytestmark = pytest.mark.django_db


def page(client, user, path, method="get", data=None):
    if user is not None:
        client.force_login(user)
    return getattr(client, method)(path, data or {})


def test_anonymous_is_sent_to_login(client, project):
    r = client.get(f"/p/{project.slug}/")
    assert r.status_code == 302 and r["Location"].startswith("/login/")


@pytest.mark.parametrize(
    "path", ["", "scope/", "scope/revisions/", "scope/export.md", "scope/export.csv", "members/", "audit/"]
)
@pytest.mark.parametrize("who,status", [("labeler", 200), ("pm", 200), ("outsider", 404)])
def test_project_pages(client, people, project, path, who, status):
    assert page(client, people[who], f"/p/{project.slug}/{path}").status_code == status


def test_project_page_shows_every_stage(client, people, project):
    body = page(client, people["labeler"], f"/p/{project.slug}/").content.decode()
    for title in ("Scope", "Data", "Labeling", "Profile", "Training", "Registry", "Serving", "Monitoring"):
        assert f">{title}<" in body
    assert f'href="/p/{project.slug}/scope/"' in body


@pytest.mark.parametrize("who,status", [("pm", 302), ("labeler", 403), ("outsider", 404)])
def test_scope_save(client, people, project, who, status):
    data = {
        "name": "Renamed",
        "goal": "g",
        "m-TOTAL_FORMS": "1",
        "m-INITIAL_FORMS": "0",
        "m-0-metric": "accuracy",
        "m-0-comparator": ">=",
        "m-0-target": "0.9",
    }
    r = page(client, people[who], f"/p/{project.slug}/scope/", "post", data)
    assert r.status_code == status
    project.refresh_from_db()
    assert (project.name == "Renamed") == (status == 302)


def test_scope_save_shows_field_errors(client, people, project):
    data = {
        "name": "",
        "dataset_link": "ftp//bad",
        "m-TOTAL_FORMS": "1",
        "m-INITIAL_FORMS": "0",
        "m-0-metric": "accuracy",
        "m-0-comparator": ">=",
        "m-0-target": "lots",
    }
    r = page(client, people["pm"], f"/p/{project.slug}/scope/", "post", data)
    body = r.content.decode()
    assert r.status_code == 400
    assert "The project name must not be empty." in body and "is not a valid link" in body
    assert "Row 1: target &#x27;lots&#x27; is not a number." in body


@pytest.mark.parametrize("who,status", [("manager", 302), ("pm", 403), ("outsider", 404)])
def test_scope_approve_in_browser(client, people, project, who, status):
    project.dataset, project.dataset_link, project.model, project.code_language = "d", "https://x.org", "m", "py"
    project.measurement, project.delivery = [{"metric": "accuracy", "comparator": ">=", "target": 0.9}], ["API"]
    project.scope_status = "draft"
    project.save()
    services.scope_submit(project=project, user=people["pm"])
    r = page(client, people[who], f"/p/{project.slug}/scope/approve/", "post", {})
    assert r.status_code == status
    project.refresh_from_db()
    assert (project.scope_status == "approved") == (status == 302)


def test_returning_a_scope_needs_a_reason_beside_its_field(client, people, project):
    project.dataset, project.dataset_link, project.model, project.code_language = "d", "https://x.org", "m", "py"
    project.measurement, project.delivery = [{"metric": "accuracy", "comparator": ">=", "target": 0.9}], ["API"]
    project.scope_status = "draft"
    project.save()
    assert page(client, people["ds"], f"/p/{project.slug}/scope/submit/", "post", {}).status_code == 403
    assert page(client, people["pm"], f"/p/{project.slug}/scope/submit/", "post", {}).status_code == 302
    assert page(client, people["pm"], f"/p/{project.slug}/scope/return/", "post", {}).status_code == 403
    assert page(client, people["outsider"], f"/p/{project.slug}/scope/return/", "post", {}).status_code == 404
    r = page(client, people["manager"], f"/p/{project.slug}/scope/return/", "post", {"reason": ""})
    assert r.status_code == 400 and field_errors(r.content.decode(), "reason")
    project.refresh_from_db()
    assert project.scope_status == "submitted"
    r = page(client, people["manager"], f"/p/{project.slug}/scope/return/", "post", {"reason": "Targets too loose."})
    project.refresh_from_db()
    assert r.status_code == 302 and project.scope_status == "draft"


@pytest.mark.parametrize("who,status", [("pm", 302), ("labeler", 403), ("outsider", 404)])
def test_members_page_add(client, people, project, who, status):
    r = page(client, people[who], f"/p/{project.slug}/members/", "post", {"username": "ds", "roles": ["reviewer"]})
    assert r.status_code == status
    assert project.members.filter(user=people["ds"], role="reviewer").exists() == (status == 302)


def test_revision_diff_page(client, people, project):
    services.scope_update(project=project, user=people["pm"], data={"goal": "one"})
    services.scope_update(project=project, user=people["pm"], data={"goal": "two"})
    body = page(client, people["labeler"], f"/p/{project.slug}/scope/revisions/?a=1&b=2").content.decode()
    assert 'id="diff"' in body and "<pre>one</pre>" in body and "<pre>two</pre>" in body
    assert page(client, people["labeler"], f"/p/{project.slug}/scope/revisions/?a=1&b=7").status_code == 404


def test_free_text_is_escaped(client, people, project):
    services.scope_update(project=project, user=people["pm"], data={"name": "<script>alert(1)</script>"})
    body = page(client, people["labeler"], f"/p/{project.slug}/").content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


def test_create_project_in_browser(client, people):
    from apps.accounts.models import ProjectMember

    html = page(client, people["labeler"], "/projects/new/").content.decode()
    assert 'id="creator-roles"' in html and html.count('name="creator_roles"') == 5 and html.count("checked") >= 5
    r = page(
        client,
        people["labeler"],
        "/projects/new/",
        "post",
        {
            "name": "Springs",
            "m-TOTAL_FORMS": "1",
            "m-INITIAL_FORMS": "0",
            "creator_roles": ["pm", "labeler", "reviewer", "data_scientist", "manager"],
        },
    )
    assert r.status_code == 302 and r["Location"] == "/p/springs/"
    assert ProjectMember.objects.filter(project__slug="springs", user=people["labeler"]).count() == 5
    r = page(
        client,
        people["labeler"],
        "/projects/new/",
        "post",
        {"name": "Coils", "m-TOTAL_FORMS": "1", "m-INITIAL_FORMS": "0", "creator_roles": ["data_scientist"]},
    )
    assert set(ProjectMember.objects.filter(project__slug="coils").values_list("role", flat=True)) == {
        "pm",
        "data_scientist",
    }


def test_audit_log_page_lists_events(client, people, project):
    from apps.accounts.services import member_set_roles

    member_set_roles(project=project, user=people["ds"], roles=["data_scientist", "reviewer"], actor=people["pm"])
    body = page(client, people["labeler"], f"/p/{project.slug}/audit/?action=member").content.decode()
    assert "member.roles_changed" in body and "pm" in body


def test_the_pm_invites_by_email_and_removes_members_and_the_audit_log_keeps_both(client, people, project):
    from apps.accounts.models import ProjectMember
    from apps.core.models import AuditEvent
    from apps.labeling.models import ItemLabel
    from tests.factories import UserFactory, label_classes, make_item, set_label

    newcomer = UserFactory(username="newcomer", email="New.Comer@example.com")
    url = f"/p/{project.slug}/members/"
    # Invited by email (any case); a wrong one is named beside the field.
    r = page(client, people["pm"], url, "post", {"username": "new.comer@EXAMPLE.com", "roles": ["labeler"]})
    assert (
        r.status_code == 302 and ProjectMember.objects.filter(project=project, user=newcomer, role="labeler").exists()
    )
    r = page(client, people["pm"], url, "post", {"username": "nobody@example.com", "roles": ["labeler"]})
    assert r.status_code == 400 and "must sign up first" in field_errors(r.content.decode(), "username")[0]
    # The newcomer labels something; then the PM removes them (only the PM may).
    good, _ = label_classes(project)
    item = make_item(project)
    set_label(item, good, user=newcomer)
    remove = f"/p/{project.slug}/members/{newcomer.pk}/remove/"
    assert f'action="{remove}"' in page(client, people["pm"], url).content.decode()
    assert page(client, people["ds"], remove, "post", {}).status_code == 403
    assert page(client, people["outsider"], remove, "post", {}).status_code == 404
    assert page(client, people["pm"], remove, "get").status_code == 405
    assert page(client, people["pm"], remove, "post", {}).status_code == 302
    assert not ProjectMember.objects.filter(project=project, user=newcomer).exists()
    # Their past work stays theirs; the audit log has both steps.
    assert ItemLabel.objects.get(item=item).updated_by == newcomer
    actions = list(
        AuditEvent.objects.filter(project=project, action__startswith="member.").values_list("action", flat=True)
    )
    assert "member.added" in actions and "member.removed" in actions
    audit = page(client, people["labeler"], f"/p/{project.slug}/audit/").content.decode()
    assert "member.removed" in audit
    # The project keeps a PM: the last one cannot be removed.
    r = page(client, people["pm"], f"/p/{project.slug}/members/{people['pm'].pk}/remove/", "post", {})
    assert r.status_code == 400 and "only PM" in field_errors(r.content.decode())[0]
    assert ProjectMember.objects.filter(project=project, user=people["pm"], role="pm").exists()
