"""A real ``celery -A mlportal worker`` ingests an import; SIGKILLed mid-way and started again, it
finishes the import without duplicate items.

The worker shares this test's database (committed rows: ``transactional_db``; its settings are
passed as DATABASE_URL) and media folder, and talks to the configured broker (filesystem:// in
its own folder by default, Redis when CELERY_BROKER_URL says so). The test itself never sends a
message: a starting worker picks up unfinished imports, which is what this exercises."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from apps.datasets.models import ImportFile, ImportJob, Item
from apps.datasets.services import import_folder_start
from tests.factories import member, png_bytes

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _database_url():
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = f"{quote(s['USER'] or '')}:{quote(s['PASSWORD'] or '')}@" if s["USER"] else ""
    return f"postgres://{auth}{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"


def _start_worker(tmp_path, n):
    for sub in ("queue", "processed"):  # the filesystem broker does not create its folders
        (tmp_path / "var" / "broker" / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "PORTAL_ENV": "test",
        "DATASET_INGEST_CHUNK_FILES": "8",
        "WORKER_HEARTBEAT_SECONDS": "2",
    }
    log = open(tmp_path / f"worker{n}.log", "wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "mlportal",
            "worker",
            "-Q",
            "ingest,default",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"ingest-test-{n}@%h",
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _wait(pred, timeout, what, logs):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    tail = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what}\n{tail}")


def test_killed_worker_restarted_finishes_import_without_duplicates(transactional_db, tmp_path):
    from tests.factories import ProjectFactory

    project = ProjectFactory()
    user = member(project, "data_scientist", username="ds-int")
    folder = tmp_path / "images"
    for i in range(96):
        label = "good" if i % 3 else "defect"
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f"{i:03d}.png").write_bytes(png_bytes(size=(384, 384), mode="RGB", seed=i))
    for i in range(4):  # exact copies: duplicates, whichever worker sees them
        (folder / "good" / f"copy{i}.png").write_bytes((folder / "good" / f"{3 * i + 1:03d}.png").read_bytes())
    job = import_folder_start(project=project, user=user, folder=folder, labels_from_folders=True, dispatch_job=False)
    assert job.status == "queued" and job.total == 100
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]

    first = _start_worker(tmp_path, 1)
    try:
        _wait(lambda: ImportJob.objects.get(pk=job.pk).processed >= 16, 120, "the first worker to make progress", logs)
    finally:
        _kill(first)
    job.refresh_from_db()
    assert job.status == "running" and job.processed < job.total, "the kill came too late to test anything"
    done_before = job.processed

    second = _start_worker(tmp_path, 2)
    try:
        _wait(lambda: ImportJob.objects.get(pk=job.pk).status in ("done", "failed"), 180, "the import to finish", logs)
    finally:
        _kill(second)
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert done_before < job.total
    assert Item.objects.filter(project=project).count() == 96
    assert (job.accepted, job.duplicates, job.rejected, job.processed) == (96, 4, 0, 100)
    assert not ImportFile.objects.filter(job=job, result="pending").exists()
    assert Item.objects.filter(project=project, current_label__label_class__name="defect").count() == 32
