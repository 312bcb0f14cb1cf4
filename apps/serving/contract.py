"""The predict contract, one place for both doors: the serving process's fast path (fastpath.py) and
the API view (api.Predict). Who may ask (a project token, its project, its scope), how often (the
per-token minute window), how much (the body's size), what happens to the images, and what every
refusal says — status, ``{"detail", "request_id", "errors"?}`` body and headers. The fast path calls
``admit`` and ``answer``; the view's DRF authentication, permission and throttle classes raise the same
refusals through the pieces ``admit`` is made of, and its error handler writes the same bodies."""

import time

from django.conf import settings
from django.core.cache import cache
from django.http import Http404

from .engine import ModelUnavailable
from .inputs import InputError
from .models import ProjectToken
from .predict import predict_images

clock = time.time  # the rate windows' clock (a test holds it still)
UNAUTHENTICATED_HEADER = 'Bearer realm="api"'
BAD_TOKEN = "Invalid or revoked project token."
NO_PROJECT = "No such project."


class Refused(Exception):
    """A request the contract turns away: its HTTP ``status``, ``detail``, per-file ``errors`` and
    extra ``headers`` (Retry-After, WWW-Authenticate)."""

    def __init__(self, status, detail, *, errors=None, headers=()):
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, str(detail), errors, list(headers)


def body(request_id, detail, errors=None):
    """Every refusal's body."""
    return {"detail": str(detail), "request_id": request_id, **({"errors": errors} if errors else {})}


def scope_message(scope):
    return f"This project token lacks the {scope!r} scope."


def throttled_message(wait_s):
    return f"Request was throttled. Expected available in {wait_s} seconds."


def token_project(token, slug, scope):
    """The project a project token (``None``: unknown or revoked) may call at ``slug`` with ``scope``."""
    if token is None:
        raise Refused(401, BAD_TOKEN, headers=[("WWW-Authenticate", UNAUTHENTICATED_HEADER)])
    if token.project.slug != slug:
        raise Refused(404, NO_PROJECT)  # as for an outsider: the project's existence is not told
    if not token.allows(scope, token.project):
        raise Refused(403, scope_message(scope))
    return token.project


def rate_ident(token=None, user=None):
    """(counter name, requests a minute) for a project token, a personal token or a signed-in user."""
    if isinstance(token, ProjectToken):
        return f"p{token.pk}", token.rate_per_minute or settings.SERVING_RATE_PER_MINUTE
    if token is not None and getattr(token, "pk", None):
        return f"u{token.pk}", settings.SERVING_RATE_PER_MINUTE
    if user is not None and user.is_authenticated:
        return f"s{user.pk}", settings.SERVING_RATE_PER_MINUTE
    return None, None


def rate_allow(ident, limit):
    """(allowed, seconds until the window turns): a fixed one-minute window counted in the Django cache
    (Redis when CACHE_URL says so, so every serving replica shares it)."""
    now = clock()
    key = f"serving:rate:{ident}:{int(now // 60)}"
    cache.add(key, 0, 90)
    try:
        n = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, 90)
        n = 1
    return n <= limit, 60 - (now % 60)


def throttle(ident, limit):
    """Counts one request in ``ident``'s window; refuses (429, Retry-After) past ``limit``."""
    ok, wait = rate_allow(ident, limit)
    if not ok:
        seconds = int(wait) + 1
        raise Refused(429, throttled_message(seconds), headers=[("Retry-After", str(seconds))])


def size(length):
    """Refuses (413) a body over SERVING_MAX_REQUEST_BYTES before a byte of it is read."""
    limit = settings.SERVING_MAX_REQUEST_BYTES
    if length > limit:
        raise Refused(413, f"The request is {length} bytes; the limit is {limit}.")


def admit(token, slug, length, scope="predict"):
    """The whole admission of a project-token request, in the order the view's classes apply it:
    token, project, scope, rate, size. Returns the project; raises Refused."""
    project = token_project(token, slug, scope)
    throttle(*rate_ident(token))
    size(length)
    return project


def wants_explain(value):
    """``explain`` as a query parameter or a JSON field: true, 1, yes, on (any case) ask for heatmaps."""
    return str(value).strip().lower() in ("1", "true", "yes", "on") if value not in (None, "") else False


def answer(model_of, raws_of, *, ref, request_id, started, explain=False):
    """(status, body) of a prediction: ``model_of()`` the registered model (Http404 when unknown),
    ``raws_of()`` the request's raw inputs. Bad input, an unknown model or version and a model that
    cannot answer become refusals' bodies; the images never reach a model when any is bad."""
    try:
        rm = model_of()
        return 200, predict_images(
            registered_model=rm, raws=raws_of(), ref=ref, request_id=request_id, started=started, explain=explain
        )
    except InputError as exc:
        return exc.status, body(request_id, exc, exc.errors)
    except ModelUnavailable as exc:
        return 503, body(request_id, exc)
    except Http404 as exc:
        return 404, body(request_id, exc)
