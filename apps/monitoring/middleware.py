"""Request rate, latency and errors per endpoint (URL route name), aggregated in process and
flushed to per-minute EndpointRollup rows every MONITORING_FLUSH_SECONDS: never a DB write per
request, and the flush itself runs after a response has gone out (on ``request_finished``), never
inside the time a client waits for."""

import atexit
import logging
import threading
import time

from django.conf import settings
from django.utils import timezone

from .rollups import LATENCY_EDGES, bin_index, endpoint_rollups_add, minute_of

log = logging.getLogger(__name__)
SKIP = {"metrics", "healthz", "readyz", "serving-readyz"}  # probes: their 503 means "not yet", not an error


class RequestCounters:
    def __init__(self):
        self.lock = threading.Lock()
        self.data = {}
        self.last_flush = time.monotonic()

    def record(self, endpoint, minute, ms, error):
        with self.lock:
            entry = self.data.get((endpoint, minute))
            if entry is None:
                entry = self.data[(endpoint, minute)] = [0, 0, 0.0, [0] * (len(LATENCY_EDGES) - 1)]
            entry[0] += 1
            entry[1] += int(error)
            entry[2] += ms
            entry[3][bin_index(LATENCY_EDGES, ms)] += 1

    def take(self):
        with self.lock:
            data, self.data = self.data, {}
            self.last_flush = time.monotonic()
        return data

    def due(self):
        return time.monotonic() - self.last_flush >= getattr(settings, "MONITORING_FLUSH_SECONDS", 10)

    def flush(self):

        data = self.take()
        if data:
            try:
                endpoint_rollups_add(data)
            except Exception:  # a monitoring hiccup must never break a request; the numbers are lost, not the page
                log.exception("could not flush request rollups")
        return len(data)


counters = RequestCounters()


def _flush_at_exit():
    if getattr(settings, "PORTAL_ENV", "") == "test":  # the test database is gone by now
        return
    try:
        data = counters.take()
        if data:
            endpoint_rollups_add(data)
    except Exception:  # noqa: BLE001 - the process is going away; its last seconds of counts are not worth a traceback
        pass


atexit.register(_flush_at_exit)


def endpoint_of(request):
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.url_name or "unnamed"


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        error = False
        try:
            response = self.get_response(request)
            error = response.status_code >= 500
            return response
        except Exception:
            error = True
            raise
        finally:
            endpoint = endpoint_of(request)
            if endpoint not in SKIP:
                record_now(endpoint, (time.perf_counter() - started) * 1000, error)


def record_now(endpoint, ms, error):
    """One request's figures into the current minute (what serving's fast path reports)."""
    counters.record(endpoint, minute_of(timezone.now()), ms, error)


def flush_if_due(**kwargs):
    """``request_finished`` receiver: the server has sent the response when it closes it."""
    if counters.due():
        counters.flush()
