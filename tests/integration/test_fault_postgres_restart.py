"""Fault: PostgreSQL restarts while the portal is under load.

Only with DATABASE_URL=postgres://… (skips otherwise). The test starts a PostgreSQL cluster of
its own (the shared server is never touched), loads the schema of the test database into it,
points the portal under gunicorn (threads, persistent connections: DB_CONN_MAX_AGE) at it, fires
API and page requests from threads and stops + starts the cluster under them. Requests in flight
or arriving while it is down answer 503 "database unavailable, retry" (JSON for the API, a page
for a browser; apps.core.middleware) — never a 500 trace — and the next requests succeed on
their own (CONN_HEALTH_CHECKS: a dead pooled connection is replaced)."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection

from .faults import ROOT, OwnPostgres, WebServer, http

pytestmark = pytest.mark.integration

SETUP = """
import json, django
django.setup()
from django.contrib.sessions.backends.db import SessionStore
from apps.accounts.models import Role
from apps.accounts.services import api_token_create
from tests.factories import ProjectFactory, make_item, member
project = ProjectFactory(slug="pg-restart")
user = member(project, Role.DATA_SCIENTIST, username="ds-pg")
for i in range(3):
    make_item(project)
_, key = api_token_create(user=user, name="faults")
s = SessionStore()
s["_auth_user_id"], s["_auth_user_backend"] = str(user.pk), "django.contrib.auth.backends.ModelBackend"
s["_auth_user_hash"] = user.get_session_auth_hash()
s.create()
print(json.dumps({"slug": project.slug, "key": key, "session": s.session_key}))
"""


@pytest.fixture
def own_postgres(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip(
            "a PostgreSQL cluster of the test's own: runs only with DATABASE_URL=postgres://… (this run uses "
            f"{connection.vendor})"
        )
    if not shutil.which("pg_dump") or not shutil.which("psql"):
        pytest.skip("pg_dump and psql are needed to copy the schema into the test's own cluster")
    try:
        pg = OwnPostgres().init()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield pg
    pg.close()


def _copy_schema_into(pg, name):
    """The test database's schema (already migrated by pytest-django) into ``name`` on ``pg``:
    a second or two, where running the migrations again would take a quarter of a minute."""
    s = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": s["PASSWORD"] or ""}
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-qc", f"CREATE DATABASE {name}"],
        check=True,
        env=env,
        capture_output=True,
        timeout=30,
    )
    user = ["-U", s["USER"]] if s["USER"] else []
    dump = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "-h",
            s["HOST"] or "127.0.0.1",
            "-p",
            str(s["PORT"] or 5432),
            *user,
            s["NAME"],
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=60,
    ).stdout
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d", name],
        input=dump,
        check=True,
        env=env,
        capture_output=True,
        timeout=60,
    )


def test_postgres_restart_under_load_in_flight_requests_fail_cleanly_and_the_next_succeed(own_postgres, tmp_path):
    pg = own_postgres
    _copy_schema_into(pg, "mlportal_faults")
    env = {
        "DATABASE_URL": pg.url("mlportal_faults"),
        "DB_CONN_MAX_AGE": "60",
        "PORTAL_ENV": "test",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    made = subprocess.run(
        [sys.executable, "-c", SETUP], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr[-3000:]
    ids = json.loads(made.stdout.strip().splitlines()[-1])
    server = WebServer(env, tmp_path).start()
    api = (f"{server.url}/api/v1/projects/{ids['slug']}/data/items/", {"Authorization": f"Bearer {ids['key']}"})
    page = (f"{server.url}/p/{ids['slug']}/data/", {"Cookie": f"sessionid={ids['session']}"})
    results, stop = [], threading.Event()

    def fire(kind, url, headers):
        while not stop.is_set():
            status, hdrs, body = http("GET", url, headers=headers, timeout=20)
            results.append((time.monotonic(), kind, status, hdrs.get("Content-Type", ""), body[:400]))

    threads = [
        threading.Thread(target=fire, args=(kind, *target), daemon=True)
        for kind, target in [("api", api), ("page", page)] * 3
    ]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        pg.stop()  # fast shutdown: the server ends every connection, in-flight queries included
        time.sleep(1.5)
        pg.start()
        restarted = time.monotonic()
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join(timeout=30)

        statuses = {}
        for _, kind, status, ctype, body in results:
            statuses[(kind, status)] = statuses.get((kind, status), 0) + 1
            assert status in (200, 503), (kind, status, body, server.output())
            if status == 503:
                if kind == "api":
                    assert ctype.startswith("application/json"), ctype
                    answer = json.loads(body)
                    assert answer["code"] == "database_unavailable" and "retry" in answer["detail"]
                else:
                    assert ctype.startswith("text/html") and b"Database unavailable" in body, body
        assert statuses.get(("api", 503)) and statuses.get(("page", 503)), statuses  # the fault was felt
        assert statuses.get(("api", 200)) and statuses.get(("page", 200)), statuses

        # The next requests succeed, on every pooled connection, with no restart of the web server.
        for _ in range(6):
            for url, headers in (api, page):
                status, _, body = http("GET", url, headers=headers)
                assert status == 200, (url, status, body[:400], server.output())
        late = [r for r in results if r[0] > restarted + 1.0]
        assert all(r[2] == 200 for r in late), [r[:3] for r in late if r[2] != 200]
        assert json.loads(http("GET", server.url + "/readyz")[2])["checks"]["database"]["ok"] is True
    finally:
        stop.set()
        server.stop()
