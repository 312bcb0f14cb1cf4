import pytest

from apps.accounts.services import api_token_create
from tests.factories import field_errors

pytestmark = pytest.mark.django_db


def bearer(key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_token_authenticates_and_is_stored_hashed(client, people, project):
    token, key = api_token_create(user=people["pm"], name="ci")
    assert key.startswith("mlp_") and token.key_hash != key and key not in str(token.__dict__)
    r = client.get(f"/api/v1/projects/{project.slug}/", **bearer(key))
    assert r.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_bad_and_revoked_tokens_are_refused(client, people, project):
    assert client.get("/api/v1/projects/", **bearer("mlp_nope")).status_code == 401
    token, key = api_token_create(user=people["pm"], name="old")
    from apps.accounts.services import api_token_revoke

    api_token_revoke(token=token, actor=people["pm"])
    r = client.get("/api/v1/projects/", **bearer(key))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_read_scope_cannot_write_and_project_token_stays_in_its_project(client, people, project):
    _, read_key = api_token_create(user=people["pm"], name="ro", scopes=["read"])
    r = client.patch(
        f"/api/v1/projects/{project.slug}/", {"goal": "x"}, content_type="application/json", **bearer(read_key)
    )
    assert r.status_code == 403
    from apps.accounts.models import ProjectMember
    from tests.factories import ProjectFactory

    other = ProjectFactory()
    ProjectMember.objects.create(project=other, user=people["pm"], role="pm")
    _, pinned = api_token_create(user=people["pm"], name="pinned", project=project)
    assert client.get(f"/api/v1/projects/{project.slug}/", **bearer(pinned)).status_code == 200
    assert client.get(f"/api/v1/projects/{other.slug}/", **bearer(pinned)).status_code == 403


def test_token_api_and_page(api, client, people):
    r = api(people["labeler"]).post("/api/v1/tokens/", {"name": "script", "scopes": ["read"]}, format="json")
    assert r.status_code == 201 and r.json()["key"].startswith("mlp_")
    assert api(people["labeler"]).post("/api/v1/tokens/", {"name": " "}, format="json").status_code == 400
    assert (
        api(people["labeler"]).post("/api/v1/tokens/", {"name": "x", "scopes": ["root"]}, format="json").status_code
        == 400
    )
    assert api(people["outsider"]).get("/api/v1/tokens/").json()["count"] == 0
    client.force_login(people["labeler"])
    body = client.post("/account/tokens/", {"name": "laptop", "scopes": ["read"]}).content.decode()
    assert 'id="new-key"' in body


def test_a_personal_token_can_be_restricted_to_one_project(api, client, people, project):
    from tests.factories import ProjectFactory

    r = api(people["pm"]).post("/api/v1/tokens/", {"name": "one project", "project": project.slug}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["project"] == project.slug and r.json()["scopes"] == ["read", "write"]  # the stated default
    key = r.json()["key"]
    assert client.get(f"/api/v1/projects/{project.slug}/", **bearer(key)).status_code == 200
    other = ProjectFactory()
    from apps.accounts.models import ProjectMember

    ProjectMember.objects.create(project=other, user=people["pm"], role="pm")
    assert client.get(f"/api/v1/projects/{other.slug}/", **bearer(key)).status_code == 403
    # Only a project of one's own; an unknown or foreign slug is named.
    r = api(people["outsider"]).post("/api/v1/tokens/", {"name": "sneaky", "project": project.slug}, format="json")
    assert r.status_code == 400 and "not a member of a project" in r.json()["project"][0]
    r = api(people["pm"]).post("/api/v1/tokens/", {"name": "all"}, format="json")
    assert r.json()["project"] is None
    # The page offers the user's projects and states the defaults.
    client.force_login(people["pm"])
    html = client.get("/account/tokens/").content.decode()
    assert 'id="token-project"' in html and f'value="{project.slug}"' in html
    assert "Default scopes: read and write (predict only when ticked)" in html
    r = client.post("/account/tokens/", {"name": "page token", "project": project.slug, "scopes": ["read"]})
    from apps.accounts.models import ApiToken

    assert ApiToken.objects.get(name="page token").project == project
    # A refused form names the field, beside it, and keeps what was typed and chosen.
    r = client.post("/account/tokens/", {"name": "foreign", "project": "nope", "scopes": ["read"]})
    html = r.content.decode()
    assert r.status_code == 400 and field_errors(html, "project") == [
        "You are not a member of a project 'nope'; choose one of yours."
    ]
    assert 'value="foreign"' in html and not ApiToken.objects.filter(name="foreign").exists()
    r = client.post("/account/tokens/", {"name": ""})
    assert r.status_code == 400 and field_errors(r.content.decode(), "name") == ["This field is required."]
    # Revoking is its own form and view: the owner only (another user's token is 404), POST only.
    token = ApiToken.objects.get(name="page token")
    client.force_login(people["labeler"])
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    client.force_login(people["pm"])
    assert client.get(f"/account/tokens/{token.pk}/revoke/").status_code == 405
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
