"""Django on a throwaway SQLite database and media folder in a temporary directory (never the
configured database), migrated, removed when the bench exits."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def django_in_tmp(prefix):
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the throwaway database goes with the run
    os.environ["PORTAL_VAR_DIR"] = str(tmp)
    os.environ.pop("DATABASE_URL", None)  # always the throwaway SQLite file, never the configured DB
    os.environ.setdefault("PORTAL_ENV", "test")
    os.environ["DJANGO_SETTINGS_MODULE"] = "mlportal.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    assert str(settings.DATABASES["default"]["NAME"]).startswith(str(tmp)), "refusing to run outside the temp dir"
    call_command("migrate", verbosity=0)
    return tmp


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def web_env(tmp, name):
    """The environment of a bench that serves pages the way ``make run`` does (DEBUG off), on a
    throwaway SQLite database, media, static and broker folder under ``tmp``; set in this process."""
    os.environ.update(
        {
            "PORTAL_ENV": "dev",
            "DEBUG": "false",
            "PORTAL_VAR_DIR": str(tmp),
            "MEDIA_ROOT": str(tmp / "media"),
            "STATIC_ROOT": str(tmp / "static"),
            "DATABASE_URL": f"sqlite:///{tmp}/{name}.sqlite3",
            "CELERY_BROKER_URL": f"filesystem://{tmp}/broker",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "ALLOWED_HOSTS": "*",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "mlportal.settings",
        }
    )


def runserver(tmp):
    """``manage.py runserver --noreload`` with this process's environment on a free port, stopped when
    the bench exits; its base URL once ``/healthz`` answers (its output in ``tmp/web.log``)."""
    import subprocess
    import time
    import urllib.request

    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env={**os.environ},
        stdout=open(tmp / "web.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    atexit.register(web.terminate)
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            return base
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"runserver did not answer:\n{(tmp / 'web.log').read_text()[-2000:]}")


def session_for(user):
    """A signed-in session of ``user`` (its key, for a ``sessionid`` cookie), made without a login."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    s = SessionStore()
    s[SESSION_KEY], s[BACKEND_SESSION_KEY] = str(user.pk), "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    return s.session_key
