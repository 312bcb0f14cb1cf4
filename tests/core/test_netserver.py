"""The portal's HTTP servers (runserver in `make run`, the serving process) set TCP_NODELAY: without
it a keep-alive client waited ~40 ms per response (Nagle + delayed ACK)."""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parents[2]


def test_accepted_connections_get_tcp_nodelay():
    from apps.core.devserver.management.commands.runserver import NoDelayWSGIServer
    from apps.serving.management.commands.serve import QuietHandler, Server

    for cls in (NoDelayWSGIServer, Server):
        server = cls(("127.0.0.1", 0), QuietHandler)
        try:
            client = socket.create_connection(server.server_address)
            sock, _ = server.get_request()
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1, cls
            sock.close()
            client.close()
        finally:
            server.server_close()


def test_runserver_is_the_nodelay_one():
    cmd = load_command_class(get_commands()["runserver"], "runserver")
    assert cmd.server_cls.__name__ == "NoDelayWSGIServer"
    assert "whitenoise" in " ".join(c.__module__ for c in type(cmd).__mro__)  # static files still served


def test_keep_alive_is_not_slower_than_new_connections(tmp_path):
    """`make run`'s web server over one keep-alive connection: no 40 ms stall per response."""
    port = _free_port()
    env = {
        **os.environ,
        "PORTAL_ENV": "dev",
        "DEBUG": "false",
        "PORTAL_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/ka.sqlite3",
        "CELERY_BROKER_URL": f"filesystem://{tmp_path}/b",
    }
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        times = []
        for _ in range(22):
            t = time.perf_counter()
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            times.append((time.perf_counter() - t) * 1000)
        # A stall shows as ~40 ms on every response; without one a /healthz answers in about a millisecond.
        assert statistics.median(times[2:]) < 20, times
    finally:
        proc.terminate()
        proc.wait(20)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readiness_503s_are_not_logged_as_errors(caplog, db):
    """/readyz before the first production model answers 503: an answer, not a server error."""
    import logging

    from apps.monitoring.middleware import SKIP
    from apps.serving.engine import Engine, set_engine
    from apps.serving.serve_urls import readyz

    old = set_engine(Engine(poll=False))
    try:
        from django.test import RequestFactory
        from django.utils.log import log_response  # what Django's handler calls for every 4xx/5xx

        response = readyz(RequestFactory().get("/readyz"))
        assert response.status_code == 503
        with caplog.at_level(logging.WARNING, logger="django.request"):
            log_response(
                "Service Unavailable: %s", "/readyz", response=response, request=RequestFactory().get("/readyz")
            )
        assert not [r for r in caplog.records if r.name == "django.request"]
    finally:
        set_engine(old)
    assert {"readyz", "serving-readyz"} <= SKIP  # not counted in the endpoint error rates either
