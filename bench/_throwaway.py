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
