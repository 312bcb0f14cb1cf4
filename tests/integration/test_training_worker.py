"""A real ``celery -A mlportal worker -Q training`` process trains a tiny model on real screw
photographs from the configured broker and a database shared with the test; and a worker killed
with SIGKILL mid-run leaves a run that the reaper fails and a person can retry.

The worker reads the test database through DATABASE_URL (committed data: transactional_db) and
the test's media folder through MEDIA_ROOT.
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import connection

from apps.core.reaper import reap_stuck_jobs
from apps.training import services
from apps.training.models import EpochMetric, TrainingRun
from tests.factories import make_item, make_version, mark_profiled

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _database_url():
    """The test database (pytest-django renamed it) as a URL the worker's settings understand."""
    from urllib.parse import quote

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = f"{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}@" if db.get("USER") else ""
    return f"postgres://{auth}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(settings, tmp_path):
    """Start a worker on the training queue in its own process group; yield it; stop it."""
    for key in ("data_folder_in", "data_folder_out", "processed_folder"):  # the embedded broker's folders
        if settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key):
            Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key]).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PORTAL_ENV": "test",
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "mlportal",
            "worker",
            "-Q",
            "training",
            "--pool=solo",
            "-c",
            "1",
            "-l",
            "info",
            "-n",
            f"itest-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_path = tmp_path / "worker.log"
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def wait_for(predicate, timeout, worker, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker.poll() is not None:
            pytest.fail(
                f"the worker exited ({worker.returncode}) while waiting for {what}:\n"
                + worker.log_path.read_text()[-3000:]
            )
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; worker log:\n" + worker.log_path.read_text()[-3000:])


@pytest.fixture
def screw_version(project, screws):
    """8 good and 8 defective real screws: 4+4 train, 2+2 val, 2+2 test."""
    folder, rows = screws
    picked = [r for r in rows if r["label"] == "good"][:8] + [r for r in rows if r["label"] == "defect"][:8]
    entries = []
    for i, r in enumerate(picked):
        split = ["train"] * 4 + ["val"] * 2 + ["test"] * 2
        item = make_item(project, data=(folder / r["path"]).read_bytes(), name=r["path"])
        entries.append((item, split[i % 8], r["label"]))
    version = make_version(project, entries, seed=3)
    mark_profiled(version)
    return version


CONFIG = {
    "architecture": "tiny_cnn",
    "image_size": 64,
    "channels": 1,
    "epochs": 2,
    "batch_size": 4,
    "augmentation": "light",
    "early_stopping": False,
    "seed": 11,
}


def test_worker_trains_on_real_screws_and_stores_metrics_and_artifacts(project, people, screw_version, worker):
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=screw_version, config=CONFIG)
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).status not in ("queued", "running"), 600, worker, "the run to finish"
    )
    run.refresh_from_db()
    assert run.status == "succeeded", run.error + run.log
    assert run.worker.startswith("itest-") and run.heartbeat_at and run.finished_at > run.started_at
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", flat=True)) == [1, 2]
    m = run.test_metrics
    assert m["n"] == 4 and m["classes"] == ["defect", "good"] and 0 <= m["accuracy"] <= 1
    assert sum(map(sum, m["confusion_matrix"])) == 4 and set(m["per_class"]) == {"defect", "good"}
    assert len(m["curves"]["roc"]["fpr"]) >= 2
    kinds = {}
    for a in run.artifacts.select_related("blob"):
        with default_storage.open(a.blob.path, "rb") as fh:
            data = fh.read()
        assert hashlib.sha256(data).hexdigest() == a.sha256 and len(data) == a.size
        kinds[a.kind] = data
    assert set(kinds) == {"keras", "savedmodel", "model_card"}
    assert kinds["savedmodel"][:2] == b"PK" and kinds["keras"][:2] == b"PK"
    assert run.model_card["dataset"]["content_hash"] == screw_version.content_hash
    assert run.model_card["seeds"] == {"training": 11, "split": 3}


def test_sigkilled_worker_run_is_reaped_and_can_be_retried(project, people, screw_version, worker):
    run = services.training_run_create(
        project=project, user=people["ds"], dataset_version=screw_version, config={**CONFIG, "epochs": 500}
    )
    wait_for(lambda: EpochMetric.objects.filter(run_id=run.pk).exists(), 600, worker, "the first epoch")
    os.killpg(worker.pid, signal.SIGKILL)  # the machine dies: no cleanup code runs
    worker.wait(30)
    run.refresh_from_db()
    assert run.status == "running"  # nobody told the database
    time.sleep(3)
    assert reap_stuck_jobs(timeout_seconds=2) >= 1  # beat runs this; a short timeout instead of waiting
    run.refresh_from_db()
    assert run.status == "failed" and "heartbeat" in run.error and run.finished_at
    retry = services.training_run_rerun(run=run, user=people["ds"])
    assert retry.status == "queued" and retry.config == run.config and retry.retry_of_id == run.pk


def test_the_cli_launches_a_run_and_follows_its_epochs_from_a_real_worker(
    project, people, screw_version, worker, live_server, tmp_path, monkeypatch
):
    """`mlportal train --follow` over real HTTP against the live server, while a real worker trains."""
    import json

    from click.testing import CliRunner

    sys.path.insert(0, str(ROOT / "cli"))
    from apps.accounts.services import api_token_create
    from mlportal_cli.main import cli

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    _, key = api_token_create(user=people["ds"], name="cli")
    runner = CliRunner()
    assert runner.invoke(cli, ["login", "--url", live_server.url, "--token", key]).exit_code == 0
    r = runner.invoke(
        cli,
        ["train", project.slug, "--version", str(screw_version.number), "--config", json.dumps(CONFIG)],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output + worker.log_path.read_text()[-2000:]
    lines = r.output.splitlines()
    assert lines[0].startswith("Run #") and "queued on the training queue" in lines[0]
    assert [ln.split()[1] for ln in lines if ln.startswith("epoch ")] == ["1/2", "2/2"]
    assert "loss=" in r.output and "succeeded: test accuracy" in lines[-1]
    run = TrainingRun.objects.get(pk=int(lines[0].split("#")[1].split()[0]))
    assert run.status == "succeeded" and run.worker.startswith("itest-")
