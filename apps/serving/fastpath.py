"""The serving process's direct route for its hot path: ``POST …/serving/models/<model>/predict/``
with one image as the body and a project token. It answers exactly as the API view does (same
contract — contract.py owns the checks, the answer and every refusal's status and body) without the Django middleware stack and DRF's
negotiation, which cost about as much as the model call; every other request goes to Django."""

import json
import re
import time
from urllib.parse import parse_qs

from django.db import DatabaseError, connection

from . import contract
from .auth import token_lookup
from .inputs import RawInput
from .models import ProjectToken
from .predict import request_id_for
from .selectors import model_by_ref
from .signals import request_observers

PREDICT_PATH = re.compile(r"^/api/v1/projects/(?P<slug>[-\w]+)/serving/models/(?P<model>[^/]+)/predict/$")
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    429: "Too Many Requests",
    503: "Service Unavailable",
}
MODEL_CACHE_S = 5.0


class FastPredictApp:
    def __init__(self, django_app):
        self.django_app = django_app
        self._models = {}  # (project id, model ref) → (RegisteredModel, when)

    def __call__(self, environ, start_response):
        match = PREDICT_PATH.match(environ.get("PATH_INFO", ""))
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        auth = environ.get("HTTP_AUTHORIZATION", "").split()
        if (
            match
            and environ.get("REQUEST_METHOD") == "POST"
            and (ctype.startswith("image/") or ctype == "application/octet-stream")
            and len(auth) == 2
            and auth[0].lower() in ("bearer", "token")
            and auth[1].startswith(ProjectToken.PREFIX)
        ):
            return self.predict(environ, start_response, match["slug"], match["model"], auth[1])
        return self.django_app(environ, start_response)

    def model(self, project, ref):

        hit = self._models.get((project.pk, ref))
        if hit and time.monotonic() - hit[1] < MODEL_CACHE_S:
            return hit[0]
        try:
            rm = model_by_ref(project, ref)
        except DatabaseError:
            connection.close_if_unusable_or_obsolete()
            if hit is None:
                raise
            return hit[0]  # the database is down: the model as last read (the engine holds its pointer)
        self._models[(project.pk, ref)] = (rm, time.monotonic())
        return rm

    def predict(self, environ, start_response, slug, model, key):
        started = time.perf_counter()
        rid = request_id_for(environ.get("HTTP_X_REQUEST_ID"))
        extra = []
        try:
            status, body = self._answer(environ, slug, model, key, rid, started, extra)
        except DatabaseError:  # down, and this process has not seen this token or model yet
            status, extra = 503, [("Retry-After", "5")]
            body = {
                "detail": "The database is unavailable; retry shortly.",
                "code": "database_unavailable",
                "request_id": rid,
            }
        except Exception:
            import logging

            logging.getLogger("apps.serving").exception("serving: prediction failed")
            status, body = 500, {"detail": "Internal error.", "request_id": rid}
        data = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("X-Request-ID", rid)]
        start_response(f"{status} {REASONS.get(status, 'Error')}", headers + extra)
        for observe in request_observers:  # monitoring's request counters (the Django middleware is bypassed here)
            try:
                observe("api-serving-predict", (time.perf_counter() - started) * 1000, status >= 500)
            except Exception:  # noqa: BLE001 - metrics never fail a request
                pass
        return [data]

    def _answer(self, environ, slug, model, key, rid, started, extra):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            project = contract.admit(token_lookup(key), slug, length)
        except contract.Refused as refused:
            extra.extend(refused.headers)
            return refused.status, contract.body(rid, refused.detail, refused.errors)
        data = environ["wsgi.input"].read(length) if length else b""
        query = parse_qs(environ.get("QUERY_STRING", ""))
        ref = (query.get("version") or [None])[0] or None
        name = (environ.get("HTTP_X_FILENAME") or "image")[:200]
        return contract.answer(
            lambda: self.model(project, model),
            lambda: [RawInput(0, name, data)],
            ref=ref,
            request_id=rid,
            started=started,
            explain=contract.wants_explain((query.get("explain") or [None])[0]),
        )
