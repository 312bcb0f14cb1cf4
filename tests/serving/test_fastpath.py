"""The serving process's direct route answers exactly as the API view does."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest

from apps.serving import services
from apps.serving.fastpath import FastPredictApp
from tests.training.conftest import tiny_png

from .conftest import predict_url

pytestmark = pytest.mark.django_db


def call(app, path, body=b"", ctype="image/png", key=None, query="", headers=None):
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": ctype,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **(headers or {}),
    }
    if key:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, hdrs):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(hdrs)

    out = b"".join(app(environ, start_response))
    return seen["status"], json.loads(out) if out else None, seen["headers"]


@pytest.fixture
def app():
    calls = []

    def django_app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response("299 Django", [])
        return [b""]

    a = FastPredictApp(django_app)
    a.django_calls = calls
    return a


def test_same_answer_as_the_api(project, people, served, engine, app, client):
    _, key = services.project_token_create(project=project, user=people["ds"], name="cam")
    img = tiny_png(1, "defect")
    status, body, headers = call(app, predict_url(project), img, key=key, headers={"HTTP_X_FILENAME": "cam.png"})
    api = client.post(
        predict_url(project),
        data=img,
        content_type="image/png",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_X_FILENAME="cam.png",
    ).json()
    assert status == 200 and headers["X-Request-ID"] == body["request_id"] and not app.django_calls
    drop = ("request_id", "latency_ms")
    assert {k: v for k, v in body.items() if k not in drop} == {k: v for k, v in api.items() if k not in drop}
    status, body, _ = call(app, predict_url(project), img, key=key, query="version=1")
    assert status == 200 and body["route"] == "pinned"
    engine.writer.flush()
    from apps.serving.models import PredictionLog

    assert PredictionLog.objects.count() == 3


def test_refusals_match_the_api(project, people, served, engine, app, client, settings, monkeypatch):
    """Both doors answer every refusal with the same status, body and headers (contract.py owns them)."""
    import re

    from django.core.cache import cache

    from apps.serving import contract

    monkeypatch.setattr(contract, "clock", lambda: 6_000_030.0)  # one rate window for the whole test

    from tests.factories import ProjectFactory

    cache.clear()  # rate counters of earlier tests' tokens
    img = tiny_png(1, "defect")
    _, key = services.project_token_create(project=project, user=people["ds"], name="cam", rate_per_minute=6)
    _, read = services.project_token_create(project=project, user=people["ds"], name="ro", scopes=["read"])
    _, other = services.project_token_create(project=ProjectFactory(), user=None, name="x")

    def both(url, body, token, rid):
        fast = call(app, url, body, key=token, headers={"HTTP_X_REQUEST_ID": rid})
        r = client.post(
            url, data=body, content_type="image/png", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_REQUEST_ID=rid
        )
        slow = (r.status_code, r.json(), r.headers)
        for _status, answer, headers in (fast, slow):
            assert answer["request_id"] == rid and headers["X-Request-ID"] == rid
        assert fast[0] == slow[0], (fast, slow)
        shown = [{k: re.sub(r"\d+ seconds", "N seconds", str(v)) for k, v in a.items()} for a in (fast[1], slow[1])]
        assert shown[0] == shown[1]
        for name in ("WWW-Authenticate", "Retry-After"):
            assert (name in fast[2]) == (name in slow[2]), name
        return fast

    status, body, headers = both(predict_url(project), img, "mlpp_nope", "r-401")
    assert status == 401 and body["detail"] == "Invalid or revoked project token."
    assert headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert both(predict_url(project), img, other, "r-404")[:2] == (
        404,
        {"detail": "No such project.", "request_id": "r-404"},
    )
    status, body, _ = both(predict_url(project), img, read, "r-403")
    assert status == 403 and body["detail"] == "This project token lacks the 'predict' scope."
    status, body, _ = both(predict_url(project), b"text", key, "r-400")
    assert status == 400 and "Not an image" in body["errors"][0]["error"]
    status, body, _ = both(predict_url(project, "nosuch"), img, key, "r-404m")
    assert status == 404 and "nosuch" in body["detail"]
    settings.SERVING_MAX_REQUEST_BYTES = 100
    status, body, _ = both(predict_url(project), img, key, "r-413")
    assert status == 413 and body["detail"] == f"The request is {len(img)} bytes; the limit is 100."
    settings.SERVING_MAX_REQUEST_BYTES = 10_000_000
    # six requests a minute: the five above were counted (in one window for both doors), one more each
    # way passes or is throttled, and the throttled answers say when to retry
    status, body, headers = both(predict_url(project), img, key, "r-429")
    assert status == 429 and int(headers["Retry-After"]) >= 1 and body["detail"].startswith("Request was throttled.")


def test_everything_else_goes_to_django(project, people, served, engine, app):
    _, key = services.project_token_create(project=project, user=people["ds"], name="cam")
    call(app, predict_url(project), b"--x--", ctype="multipart/form-data; boundary=x", key=key)  # multipart
    call(app, predict_url(project), b"{}", ctype="application/json", key=key)  # JSON
    call(app, predict_url(project), tiny_png(1, "defect"), key=None)  # no token (session, personal token)
    call(app, f"/api/v1/projects/{project.slug}/serving/predictions/", key=key)
    assert len(app.django_calls) == 4
