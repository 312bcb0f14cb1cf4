"""A real Celery worker process, against the configured broker (Redis in CI, filesystem:// by default)
and the test database (committed data: these tests use ``transactional_db``)."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url():
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    def __init__(self, queues, extra_env):
        self.queues, self.extra_env, self.proc = queues, extra_env, None
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.log = Path(settings.VAR_DIR) / f"worker-{self.name.split('@')[0]}.log"

    def start(self):
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PORTAL_ENV": "test",
            "WORKER_HEARTBEAT_SECONDS": "1",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **self.extra_env,
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mlportal",
                "worker",
                "--pool",
                "solo",
                "-Q",
                ",".join(self.queues),
                "-n",
                self.name,
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=open(self.log, "w"),
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self):
        """SIGKILL: no clean shutdown, as when a machine dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self):
        return self.log.read_text() if self.log.exists() else ""


def wait_for(predicate, timeout=60.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def celery_worker_process(transactional_db, settings):
    """``start(queues=[...], **env) -> Worker``; every worker started is stopped at the end."""
    from mlportal.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    with app.connection_for_write() as conn:  # no message left by an earlier run reaches this test
        for q in app.conf.task_queues:
            try:
                q.bind(conn.default_channel).purge()
            except Exception:  # noqa: BLE001
                pass
    started = []

    def start(queues=("default",), **env):
        w = Worker(list(queues), {k: str(v) for k, v in env.items()}).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()
