"""Faults that are not the request's fault answer 503 with a message a person can act on.

- The database is down or restarting (django.db OperationalError / InterfaceError): 503
  "database unavailable, retry" — JSON under /api/, a plain page elsewhere — never a 500 trace.
  The next request reconnects by itself (CONN_HEALTH_CHECKS).
- The object storage (S3) does not answer (botocore's connection errors): 503 "storage
  unavailable", the same way.
- The broker refused a job (core.jobs.QueueUnavailable) or the storage is full
  (datasets.storage.StorageFull) on a page: the message is shown on the page the form came
  from; the API answers 503 / 507 JSON through DRF (apps.core.api).

Neither answer touches the database: rendering it must not fail the same way again.

Requests the database could not even compare (a NUL byte in the address) are refused with 400
before any view runs.
"""

import logging
import sys

from django.contrib import messages
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults

from .errors import StorageFull
from .jobs import QueueUnavailable

log = logging.getLogger(__name__)
DATABASE_UNAVAILABLE = "The database is unavailable (restarting or unreachable); retry in a few seconds."
STORAGE_UNAVAILABLE = (
    "The object storage (S3) is unreachable; nothing was stored for this request. Retry in a few "
    "seconds; if it persists, an operator checks the store (docs/operations.md)."
)
RETRY_AFTER_SECONDS = 5
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · ML Portal</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>{title}</h1><p role="alert">{message}</p><p><a href="{back}">Try again</a></p></body></html>"""


def _wants_json(request):
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def unavailable_response(request, title, message, code):
    if _wants_json(request):
        response = JsonResponse({"detail": message, "code": code}, status=503)
    else:
        page = _PAGE.format(title=escape(title), message=escape(message), back=escape(request.get_full_path()))
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def database_unavailable(request, exc):
    log.warning("database unavailable during %s %s: %s", request.method, request.path, exc)
    return unavailable_response(request, "Database unavailable", DATABASE_UNAVAILABLE, "database_unavailable")


def storage_unreachable_errors():
    """The exceptions that mean "the object store did not answer" (botocore's connection errors);
    empty when boto is not installed."""
    try:
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )
    except ImportError:
        return ()
    return (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


def storage_unavailable(request, exc):
    log.warning("object storage unavailable during %s %s: %s", request.method, request.path, exc)
    return unavailable_response(request, "Storage unavailable", STORAGE_UNAVAILABLE, "storage_unavailable")


class ServiceUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if isinstance(exc, (OperationalError, InterfaceError)):
            return database_unavailable(request, exc)
        if isinstance(exc, storage_unreachable_errors()):
            return storage_unavailable(request, exc)
        if isinstance(exc, (QueueUnavailable, StorageFull)):
            return refused_page(request, exc)
        return None


def refused_page(request, exc):
    """Back to the page the form was on, with the message; an error page when there is none."""
    message = str(exc.detail)
    title = "Queue unavailable" if isinstance(exc, QueueUnavailable) else "Storage full"
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        try:
            messages.error(request, message)
        except messages.MessageFailure:  # no message middleware: the page alone must say it
            pass
        else:
            return HttpResponseRedirect(referer, status=303)
    response = unavailable_response(request, title, message, exc.default_code)
    response.status_code = exc.status_code
    return response


def server_error(request, *args, **kwargs):
    """handler500: an error raised outside a view (a middleware saving the session, say) while the
    database is down is still a 503, not a 500."""
    exc = sys.exc_info()[1]
    if isinstance(exc, (OperationalError, InterfaceError)):
        return database_unavailable(request, exc)
    if isinstance(exc, storage_unreachable_errors()):
        return storage_unavailable(request, exc)
    return defaults.server_error(request, *args, **kwargs)


class RejectNulBytesMiddleware:
    """A NUL byte in the path or the query string is refused with 400.

    URL converters such as ``<str:kind>`` and query filters (``?status=``) hand their text to the
    ORM, and PostgreSQL refuses NUL in any string ("A string literal cannot contain NUL"), which
    would surface as a 500. Form and serializer fields already refuse NUL in bodies."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            "\x00" in request.path
            or "\x00" in request.META.get("QUERY_STRING", "")
            or any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists())
        ):
            return HttpResponseBadRequest(
                "The address contains a NUL byte (%00); it cannot name anything here.\n", content_type="text/plain"
            )
        return self.get_response(request)
