import pytest

from apps.projects import services
from apps.projects.models import Project

pytestmark = pytest.mark.django_db

FULL = {
    "dataset": "screws",
    "dataset_link": "https://example.com/d",
    "model": "CNN",
    "code_language": "Python",
    "goal": "g",
    "measurement": [{"metric": "accuracy", "comparator": ">=", "target": 0.9}],
    "delivery": ["API"],
}


def url(project, suffix=""):
    return f"/api/v1/projects/{project.slug}/{suffix}"


def test_create_and_list_only_my_projects(api, people, project):
    client = api(people["outsider"])
    r = client.post("/api/v1/projects/", {"name": "Gears", **FULL}, format="json")
    assert r.status_code == 201, r.json()
    # The creator takes all five roles by default: they can upload, label, train and approve at once.
    assert r.json()["my_roles"] == sorted(["pm", "labeler", "reviewer", "data_scientist", "manager"])
    assert r.json()["measurement"][0]["target"] == 0.9
    slugs = [p["slug"] for p in client.get("/api/v1/projects/").json()["results"]]
    assert "gears" in slugs and project.slug not in slugs


def test_create_reports_field_errors(api, people):
    r = api(people["pm"]).post(
        "/api/v1/projects/",
        {"name": "", "dataset_link": "x", "measurement": [{"metric": "accuracy", "comparator": ">=", "target": "a"}]},
        format="json",
    )
    assert r.status_code == 400
    body = r.json()
    assert body["name"] == ["The project name must not be empty."]
    assert "not a valid link" in body["dataset_link"][0]
    assert body["measurement"] == ["Row 1: target 'a' is not a number."]


def test_anonymous_is_refused(api, project):
    assert api().get(url(project)).status_code == 401
    assert api().get("/api/v1/projects/").status_code == 401


@pytest.mark.parametrize("who,status", [("pm", 200), ("labeler", 200), ("manager", 200), ("outsider", 404)])
def test_read_project(api, people, project, who, status):
    assert api(people[who]).get(url(project)).status_code == status


@pytest.mark.parametrize("who,status", [("pm", 200), ("labeler", 403), ("ds", 403), ("outsider", 404)])
def test_update_scope(api, people, project, who, status):
    r = api(people[who]).patch(url(project), {"goal": "Sharper goal"}, format="json")
    assert r.status_code == status
    assert (Project.objects.get(pk=project.pk).goal == "Sharper goal") == (status == 200)


@pytest.mark.parametrize("who,status", [("pm", 204), ("manager", 403), ("outsider", 404)])
def test_delete_project(api, people, project, who, status):
    assert api(people[who]).delete(url(project)).status_code == status
    assert Project.objects.filter(pk=project.pk).exists() == (status != 204)


def _submitted(people):
    project = services.project_create(creator=people["pm"], name="Flow", creator_roles=["pm"], **FULL)
    for u in ("manager", "labeler"):
        from apps.accounts.models import ProjectMember

        ProjectMember.objects.create(project=project, user=people[u], role="manager" if u == "manager" else "labeler")
    return project


@pytest.mark.parametrize("who,status", [("pm", 200), ("labeler", 403), ("outsider", 404)])
def test_submit(api, people, who, status):
    project = _submitted(people)
    assert api(people[who]).post(url(project, "scope/submit/")).status_code == status


@pytest.mark.parametrize("who,status", [("manager", 200), ("pm", 403), ("outsider", 404)])
def test_approve(api, people, who, status):
    project = _submitted(people)
    services.scope_submit(project=project, user=people["pm"])
    r = api(people[who]).post(url(project, "scope/approve/"), {"reason": "ok"}, format="json")
    assert r.status_code == status
    if status == 200:
        assert r.json()["scope_status"] == "approved"


def test_approving_a_draft_is_a_clear_400(api, people):
    project = _submitted(people)
    r = api(people["manager"]).post(url(project, "scope/approve/"))
    assert r.status_code == 400 and "Draft" in r.json()["detail"]


@pytest.mark.parametrize("who,status", [("manager", 200), ("pm", 403), ("outsider", 404)])
def test_return_to_draft(api, people, who, status):
    project = _submitted(people)
    services.scope_submit(project=project, user=people["pm"])
    assert (
        api(people[who]).post(url(project, "scope/return/"), {"reason": "metric unclear"}, format="json").status_code
        == status
    )


@pytest.mark.parametrize("who,status", [("labeler", 200), ("outsider", 404)])
def test_revisions_diff_and_exports(api, people, who, status):
    project = _submitted(people)
    services.scope_update(project=project, user=people["pm"], data={"goal": "changed"})
    client = api(people[who])
    assert client.get(url(project, "scope/revisions/")).status_code == status
    r = client.get(url(project, "scope/diff/?a=1&b=2"))
    assert r.status_code == status
    if status == 200:
        changed = [f["field"] for f in r.json()["fields"] if f["changed"]]
        assert changed == ["Project goal"]
        assert client.get(url(project, "scope/diff/?a=1&b=9")).status_code == 404
        assert client.get(url(project, "scope/diff/?a=x")).status_code == 400
    for fmt in ("md", "csv"):
        assert client.get(url(project, f"scope/export.{fmt}")).status_code == status


@pytest.mark.parametrize("who,status", [("pm", 200), ("ds", 403), ("outsider", 404)])
def test_set_member_roles(api, people, project, who, status):
    r = api(people[who]).post(
        url(project, "members/"), {"username": "reviewer", "roles": ["reviewer", "labeler"]}, format="json"
    )
    assert r.status_code == status
    if status == 200:
        assert r.json()["roles"] == ["labeler", "reviewer"]


def test_member_input_errors(api, people, project):
    client = api(people["pm"])
    assert client.post(url(project, "members/"), {"username": "ghost", "roles": ["labeler"]}, format="json").json() == {
        "username": ["No user with the username or email 'ghost': they must sign up first."]
    }
    assert (
        client.post(url(project, "members/"), {"username": "ds", "roles": ["king"]}, format="json").status_code == 400
    )


@pytest.mark.parametrize("who,status", [("labeler", 200), ("outsider", 404)])
def test_members_and_audit_read(api, people, project, who, status):
    assert api(people[who]).get(url(project, "members/")).status_code == status
    assert api(people[who]).get(url(project, "audit/")).status_code == status


def test_openapi_schema_and_docs_served_locally(client, people):
    client.force_login(people["pm"])
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/projects/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"drf_spectacular_sidecar" in docs.content and b"cdn" not in docs.content.lower()


def test_create_with_chosen_roles(api, people):
    client = api(people["outsider"])
    r = client.post(
        "/api/v1/projects/", {"name": "Nuts", "creator_roles": ["data_scientist", "labeler"]}, format="json"
    )
    assert r.status_code == 201, r.json()
    assert r.json()["my_roles"] == ["data_scientist", "labeler", "pm"]  # PM always: someone owns the scope
    assert "creator_roles" not in r.json()
    r = client.post("/api/v1/projects/", {"name": "Washers", "creator_roles": ["boss"]}, format="json")
    assert r.status_code == 400 and "'boss' is not a role" in r.json()["creator_roles"][0]
    assert not client.get("/api/v1/projects/").json()["results"][-1]["slug"] == "washers"
    # A creator with the data-scientist role can upload at once (no 403).
    r = client.post("/api/v1/projects/nuts/data/uploads/", {"filename": "a.png", "size": 10}, format="json")
    assert r.status_code in (200, 201), r.content


def test_api_docs_send_a_signed_out_visitor_to_the_login_page_and_back(client, people):
    for path in ("/api/docs/", "/api/redoc/"):
        r = client.get(path)
        assert r.status_code == 302 and r["Location"] == f"/login/?next={path}"
    r = client.post(
        "/login/?next=/api/docs/", {"username": "pm", "password": "portal-test-pass-42", "next": "/api/docs/"}
    )
    assert r.status_code == 302 and r["Location"] == "/api/docs/"
    assert client.get("/api/docs/").status_code == 200
