"""The serving pages: Try it, routing, project tokens."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.serving.models import ProjectToken, ServingRoute
from tests.factories import field_errors
from tests.training.conftest import tiny_png

pytestmark = pytest.mark.django_db


def upload(name, data):
    return SimpleUploadedFile(name, data, content_type="image/png")


def test_try_it_shows_the_answer(project, people, served, engine, client_for):
    url = f"/p/{project.slug}/serving/"
    c = client_for(people["pm"])
    page = c.get(url).content.decode()
    assert 'id="try-form"' in page and 'enctype="multipart/form-data"' in page
    r = c.post(url, {"model": served.registered_model_id, "image": upload("bright.png", tiny_png(1, "defect"))})
    html = r.content.decode()
    assert (
        r.status_code == 200 and 'id="try-answer"' in html and '<strong class="predicted-class">defect</strong>' in html
    )
    assert "screws v1" in html and "<script" not in html.split('id="try-it"')[1]  # server-rendered, no JS
    # The log is written off the request path, yet the page's recent predictions already hold this one.
    recent = html.split('id="recent"')[1]
    assert "No prediction logged yet" not in recent and "<td>defect</td>" in recent


def test_try_it_names_a_bad_file(project, people, served, engine, client_for):
    r = client_for(people["ds"]).post(
        f"/p/{project.slug}/serving/",
        {"model": served.registered_model_id, "image": upload("notes.png", b"plain text")},
    )
    assert r.status_code == 400 and field_errors(r.content.decode(), "image")[0].startswith("notes.png: Not an image")
    assert engine.models == {}


def test_try_it_roles(project, people, served, engine, client_for):
    url = f"/p/{project.slug}/serving/"
    data = lambda: {"model": served.registered_model_id, "image": upload("a.png", tiny_png(1, "defect"))}  # noqa: E731
    assert client_for(people["labeler"]).get(url).status_code == 200  # members see the page
    assert 'id="try-form"' not in client_for(people["labeler"]).get(url).content.decode()
    assert client_for(people["labeler"]).post(url, data()).status_code == 403
    assert client_for(people["outsider"]).get(url).status_code == 404
    assert client_for(people["outsider"]).post(url, data()).status_code == 404
    r = client_for(None).get(url)
    assert r.status_code == 302 and "/login/" in r["Location"]


def test_route_form(project, people, served, staging, client_for):
    cand = staging("bad")
    url = f"/p/{project.slug}/serving/models/{served.registered_model_id}/route/"
    body = {"mode": "canary", "candidate": cand.number, "canary_share": "20"}
    assert client_for(people["labeler"]).post(url, body).status_code == 403
    assert client_for(people["outsider"]).post(url, body).status_code == 404
    r = client_for(people["ds"]).post(url, body, follow=True)
    assert "Routing of screws saved" in r.content.decode()
    route = ServingRoute.objects.get()
    assert (route.mode, route.candidate, route.canary_share) == ("canary", cand, 0.2)
    r = client_for(people["manager"]).post(url, {"mode": "shadow", "candidate": ""})
    card = r.content.decode().split(f'id="model-{served.registered_model_id}"')[1]
    assert r.status_code == 400 and field_errors(card, "candidate") == ["Choose the staging version to route to."]
    r = client_for(people["manager"]).post(url, {"mode": "canary", "candidate": cand.number, "canary_share": "150"})
    assert r.status_code == 400 and field_errors(r.content.decode(), "canary_share") == [
        "Canary share must be a percentage between 0 and 100."
    ]
    assert ServingRoute.objects.get().mode == "canary"  # nothing changed by the refused forms


def test_tokens_page_shows_the_key_once_and_revokes(project, people, client_for):
    url = f"/p/{project.slug}/serving/tokens/"
    assert client_for(people["labeler"]).get(url).status_code == 403
    assert client_for(people["pm"]).get(url).status_code == 403
    assert client_for(people["outsider"]).get(url).status_code == 404
    c = client_for(people["ds"])
    r = c.post(url, {"name": "line 3", "scopes": ["predict", "read"], "rate_per_minute": "120"})
    html = r.content.decode()
    token = ProjectToken.objects.get()
    key = html.split("<pre><code>")[1].split("</code>")[0]
    assert key.startswith("mlpp_") and token.scopes == ["predict", "read"] and token.rate_per_minute == 120
    assert key not in c.get(url).content.decode()  # shown once
    # A refused form comes back with the error beside its field and what was typed kept.
    r = c.post(url, {"name": "", "rate_per_minute": "12"})
    html = r.content.decode()
    assert r.status_code == 400 and field_errors(html, "name") == ["This field is required."]
    assert 'value="12"' in html and ProjectToken.objects.count() == 1
    r = c.post(url, {"name": "x", "rate_per_minute": "many"})
    assert r.status_code == 400 and field_errors(r.content.decode(), "rate_per_minute") == [
        "Rate per minute must be a whole number."
    ]
    revoke = f"{url}{token.pk}/revoke/"
    assert f'action="{revoke}"' in c.get(url).content.decode()
    assert client_for(people["pm"]).post(revoke).status_code == 403
    assert client_for(people["outsider"]).post(revoke).status_code == 404
    assert client_for(people["manager"]).get(revoke).status_code == 405  # one form, one view: POST only
    client_for(people["manager"]).post(revoke)
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == people["manager"]


def test_tokens_api(project, people, api):
    url = f"/api/v1/projects/{project.slug}/serving/tokens/"
    r = api(people["manager"]).post(url, {"name": "ci", "scopes": ["predict"]}, format="json")
    assert r.status_code == 201 and r.json()["key"].startswith("mlpp_")
    listed = api(people["ds"]).get(url).json()
    assert [t["name"] for t in listed] == ["ci"] and "key" not in listed[0]
    assert api(people["pm"]).get(url).status_code == 403
    assert api(people["outsider"]).get(url).status_code == 404
    assert api().get(url).status_code == 401
    r = api(people["ds"]).post(url, {"name": "x", "scopes": ["admin"]}, format="json")
    assert r.status_code == 400 and "scopes" in r.json()
    revoke = api(people["ds"]).post(f"{url}{listed[0]['id']}/revoke/")
    assert revoke.status_code == 200 and revoke.json()["revoked_at"]


def test_state_and_predictions_api(project, people, served, engine, api):
    from .conftest import predict_url
    from .test_api import post_files

    post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect")))
    engine.writer.flush()
    state = api(people["labeler"]).get(f"/api/v1/projects/{project.slug}/serving/").json()
    assert state["models"][0]["production"] == 1 and state["models"][0]["loaded"] == 1 and state["log"]["written"] == 1
    rows = api(people["labeler"]).get(f"/api/v1/projects/{project.slug}/serving/predictions/?model=screws").json()
    assert rows[0]["predicted_class"] == "defect" and rows[0]["model_version"] == 1
    assert api(people["outsider"]).get(f"/api/v1/projects/{project.slug}/serving/predictions/").status_code == 404
    assert api().get(f"/api/v1/projects/{project.slug}/serving/predictions/").status_code == 401


def test_the_project_page_shows_the_serving_stage(project, people, served, client_for):
    html = client_for(people["pm"]).get(f"/p/{project.slug}/").content.decode()
    assert f"/p/{project.slug}/serving/" in html


@pytest.mark.django_db(transaction=True)
def test_try_it_shows_its_answer_in_recent_predictions_with_a_background_writer(project, people, served, client_for):
    """The real web process writes the log from a background thread that collects rows for a while
    (SERVING_LOG_FLUSH_MS): the page still lists the answer it just gave."""
    from apps.serving.engine import Engine, set_engine
    from apps.serving.logwriter import LogWriter

    eng = Engine(poll=False, writer=LogWriter(background=True, flush_rows=1000, flush_ms=400))
    old = set_engine(eng)
    try:
        url = f"/p/{project.slug}/serving/"
        r = client_for(people["pm"]).post(
            url, {"model": served.registered_model_id, "image": upload("bright.png", tiny_png(1, "defect"))}
        )
        recent = r.content.decode().split('id="recent"')[1]
        assert "No prediction logged yet" not in recent and "<td>defect</td>" in recent
    finally:
        eng.stop()
        set_engine(old)
