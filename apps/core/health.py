"""/healthz says the process is alive; /readyz checks what a request needs."""

import time
import uuid

from celery import current_app as celery_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from .selectors import live_workers


def healthz(request):
    return JsonResponse({"status": "ok"})


def _check(fn):
    started = time.perf_counter()
    try:
        detail = fn()
        ok = True
    except Exception as exc:  # noqa: BLE001 - the check's whole job is to report any failure
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return {"ok": ok, "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_broker():
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_type


def check_storage():
    name = default_storage.save(f"readyz/{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    default_storage.delete(name)
    return type(default_storage).__name__


def check_workers():
    names = list(live_workers().values_list("hostname", flat=True))
    if not names:
        raise RuntimeError(f"no worker heartbeat in the last {settings.WORKER_STALE_AFTER_SECONDS}s")
    return names


@never_cache
def readyz(request):
    checks = {
        "database": _check(check_database),
        "broker": _check(check_broker),
        "storage": _check(check_storage),
        "workers": _check(check_workers),
    }
    ok = all(c["ok"] for c in checks.values())
    return not_ready_is_no_error(
        JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
    )


def not_ready_is_no_error(response):
    """A readiness probe's 503 is its answer ("not yet"), not a server error: Django's request log
    would print each one as an error (a load balancer asks every few seconds). Marked as logged."""
    if response.status_code == 503:
        response._has_been_logged = True
    return response
