"""CSRF: every form (every HTML view that takes a POST) and every API write over a session refuse a
request without the token; a request with an API token needs none (no cookie rides along)."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.services import api_token_create
from tests.factories import member

from .conftest import build_world
from .test_access_matrix import API, SAFE, _page_url, _url, project_pages

pytestmark = pytest.mark.django_db

SITE_FORMS = ["project-create", "notifications", "tokens", "login", "logout"]


def _boss(project):
    return member(project, *Role.values, username="boss")


def test_every_html_form_refuses_a_post_without_the_csrf_token(project, people):
    w = build_world(project, people)
    client = Client(enforce_csrf_checks=True)
    client.force_login(_boss(project))
    posts, problems = 0, []
    urls = [_page_url(name, conv, w) for name, conv, methods in project_pages() if "post" in methods]
    urls += [reverse(name) for name in SITE_FORMS]
    for url in urls:
        posts += 1
        r = client.post(url, {"name": "x", "reason": "some reason here", "comment": "c"})
        if r.status_code != 403 or b"CSRF" not in r.content:
            problems.append(f"POST {url} without a CSRF token: {r.status_code}")
    assert posts > 25 and not problems, "\n".join(problems)


def test_the_same_form_with_its_token_goes_through(project, people):
    """The refusal above is CSRF and nothing else: the token from the page makes the POST work."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["pm"])
    url = reverse("project-members", args=[project.slug])
    page = client.get(url)
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else page.context["csrf_token"]
    r = client.post(url, {"csrfmiddlewaretoken": str(token), "username": "reviewer", "roles": ["labeler"]})
    assert r.status_code in (200, 302), r.status_code


@pytest.mark.parametrize("entry", [e for e in API if e.method not in SAFE], ids=lambda e: e.id)
def test_api_writes_over_a_session_need_the_csrf_token(entry, project, people):
    w = build_world(project, people)
    if entry.setup:
        entry.setup(w)
    boss = _boss(project)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(boss)
    fn = getattr(client, entry.method)
    r = fn(_url(entry, w), {}, format="json")
    assert r.status_code == 403 and "CSRF" in r.json()["detail"], (r.status_code, r.content[:200])


def test_api_writes_with_a_token_need_no_csrf_token(project, people):
    client = APIClient(enforce_csrf_checks=True)
    _, key = api_token_create(user=people["pm"], name="ci", scopes=["read", "write"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    r = client.patch(reverse("api-project", args=[project.slug]), {"goal": "Sharper"}, format="json")
    assert r.status_code == 200, r.content
    r = client.post(
        reverse("api-members", args=[project.slug]), {"username": "reviewer", "roles": ["labeler"]}, format="json"
    )
    assert r.status_code == 200, r.content
