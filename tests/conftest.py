import os
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role

from .factories import ProjectFactory, member

SHARED = Path(os.environ.get("PORTAL_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
SCREWS = SHARED / "datasets" / "mvtec-screw"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Every test stores files in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SERVING_SPOOL_DIR = tmp_path / "spool"
    settings.TRAINING_CACHE_DIR = str(tmp_path / "decoded-cache")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }


@pytest.fixture(autouse=True)
def _emails_sent_when_dispatched(request, monkeypatch):
    """Notification email goes out from a Celery task (apps.registry.tasks.send_emails). Unit tests
    have no worker: the task runs in-process when its message would be published (still after the
    transaction commits). Tests marked ``real_dispatch`` see the message go to the broker instead."""
    if "real_dispatch" in request.keywords:
        return
    from apps.registry import tasks

    monkeypatch.setattr(
        tasks.send_emails,
        "apply_async",
        lambda args=(), kwargs=None, **options: tasks.send_emails.apply(args=args, kwargs=kwargs),
    )


@pytest.fixture
def project(db):
    return ProjectFactory()


@pytest.fixture
def people(project):
    """One member per role, a member holding none of the usual write roles (labeler), and an outsider."""
    return {
        "pm": member(project, Role.PM, username="pm"),
        "labeler": member(project, Role.LABELER, username="labeler"),
        "reviewer": member(project, Role.REVIEWER, username="reviewer"),
        "ds": member(project, Role.DATA_SCIENTIST, username="ds"),
        "manager": member(project, Role.MANAGER, username="manager"),
        "outsider": member(ProjectFactory(), Role.PM, username="outsider"),
    }


@pytest.fixture
def api():
    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def screws():
    """The shared screw photographs; tests that need them skip with a clear message where absent."""
    if not (SCREWS / "manifest.csv").exists():
        pytest.skip(f"shared screw images not found at {SCREWS} (set PORTAL_SHARED)")
    import csv

    with open(SCREWS / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    return SCREWS, rows
