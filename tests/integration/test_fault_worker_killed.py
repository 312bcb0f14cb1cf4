"""Fault: a worker is SIGKILLed mid-import, mid-profile and mid-training.

Each job is slowed down by the test hook JOB_STEP_DELAY_SECONDS (a pause per image or per epoch,
honoured only when PORTAL_ENV=test) so that the kill lands half-way. Then, as beat would, the
reaper runs (here called directly with a short timeout instead of waiting two minutes): the job
ends failed with the reason, nothing stays "running", and nothing it did is duplicated when the
work is done again by a fresh worker — the re-import finds the items already there, the new
profile measures each image once, the rerun has its own metrics and artifacts.
(A worker restarted *before* the reaper runs resumes an import instead: test_ingest_worker.py.)
"""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.models import Role
from apps.core.jobs import JobStatus
from apps.core.models import Blob
from apps.core.reaper import reap_stuck_jobs
from apps.datasets.models import ImportFile, ImportJob, Item
from apps.datasets.services import BATCH, import_files_start
from apps.profiling import services as profiling
from apps.profiling.models import ItemStats, ProfileRun
from apps.training import services as training
from apps.training.models import Artifact, EpochMetric, TrainingRun
from tests.factories import (
    ProjectFactory,
    label_classes,
    make_item,
    make_version,
    mark_profiled,
    member,
    png_bytes,
    set_label,
)

from .conftest import wait_for

pytestmark = pytest.mark.integration


def _reap_after_kill(worker, then_start=None):
    """SIGKILL ``worker``; start the next worker at once (``then_start()``: its start-up overlaps the wait);
    reap once the dead worker's heartbeats are stale."""
    worker.kill()
    if then_start:
        then_start()
    time.sleep(2.5)  # the heartbeats it wrote are now older than the reaper's timeout below
    return reap_stuck_jobs(timeout_seconds=2)


def _nothing_running():
    for model in (ImportJob, ProfileRun, TrainingRun):
        assert not model.objects.filter(status="running").exists(), model.__name__


def _uploaded(images):
    return [SimpleUploadedFile(f"img{i:03d}.png", d, content_type="image/png") for i, d in enumerate(images)]


def test_worker_killed_mid_import_the_job_is_reaped_and_a_reimport_duplicates_nothing(celery_worker_process):
    project = ProjectFactory()
    ds = member(project, Role.DATA_SCIENTIST, username="ds-kill-import")
    images = [png_bytes(size=(48, 48), seed=300 + i) for i in range(BATCH + 8)]
    job = import_files_start(project=project, user=ds, files=_uploaded(images))
    worker = celery_worker_process(queues=["ingest"], JOB_STEP_DELAY_SECONDS=0.15)
    wait_for(
        lambda: ImportJob.objects.get(pk=job.pk).processed >= BATCH,
        timeout=40,
        what=f"the first batch; worker said:\n{worker.output()[-3000:]}",
    )
    assert _reap_after_kill(worker) == 1
    job.refresh_from_db()
    assert job.status == "failed" and "heartbeats" in job.error and job.finished_at
    assert job.processed == BATCH < job.total, "the kill came too late to test anything"
    assert Item.objects.filter(project=project).count() == BATCH
    assert ImportFile.objects.filter(job=job, result="pending").count() == len(images) - BATCH
    _nothing_running()

    # The same files again, through a fresh worker: what was stored is found, not stored twice.
    again = import_files_start(project=project, user=ds, files=_uploaded(images))
    celery_worker_process(queues=["ingest"])
    wait_for(lambda: ImportJob.objects.get(pk=again.pk).status in ("done", "failed"), timeout=40, what="the re-import")
    again.refresh_from_db()
    assert again.status == "done", again.error
    assert (again.accepted, again.duplicates) == (len(images) - BATCH, BATCH)
    assert Item.objects.filter(project=project).count() == len(images)
    assert Blob.objects.count() == 2 * len(images)  # one image + one thumbnail each
    assert ImportJob.objects.get(pk=job.pk).status == "failed"  # a started worker did not revive the reaped job
    _nothing_running()


def _small_version(project, n):
    good, defect = label_classes(project)
    entries = []
    for i in range(n):
        item = make_item(project, data=png_bytes(size=(32, 32), seed=500 + i))
        label = "good" if i % 2 else "defect"
        set_label(item, good if i % 2 else defect)
        entries.append((item, ["train", "train", "train", "train", "val", "val", "test", "test"][i % 8], label))
    return make_version(project, entries)


def test_worker_killed_mid_profile_the_run_is_reaped_and_a_new_run_measures_each_image_once(celery_worker_process):
    project = ProjectFactory()
    ds = member(project, Role.DATA_SCIENTIST, username="ds-kill-profile")
    version = _small_version(project, 12)
    worker = celery_worker_process(queues=["profile"], JOB_STEP_DELAY_SECONDS=0.5)
    run = profiling.profile_run_start(version=version, user=ds)
    wait_for(
        lambda: ProfileRun.objects.get(pk=run.pk).processed >= 1,
        timeout=40,
        what=f"the first saved measurements; worker said:\n{worker.output()[-3000:]}",
    )
    assert _reap_after_kill(worker) == 1
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "heartbeats" in run.error
    measured = ItemStats.objects.filter(run=run).count()
    assert 1 <= measured < 12, "the kill came too late to test anything"
    _nothing_running()

    celery_worker_process(queues=["profile"])
    retry = profiling.profile_run_start(version=version, user=ds)
    assert retry.pk != run.pk
    wait_for(lambda: ProfileRun.objects.get(pk=retry.pk).status in JobStatus.FINISHED, timeout=40, what="the new run")
    retry.refresh_from_db()
    assert retry.status == JobStatus.SUCCEEDED and retry.processed == retry.total == 12, retry.error
    assert ItemStats.objects.filter(run=retry).count() == 12
    assert ItemStats.objects.filter(run=run).count() == measured  # the dead run gained nothing afterwards
    assert ProfileRun.objects.get(pk=run.pk).status == JobStatus.FAILED
    _nothing_running()


CONFIG = {
    "architecture": "tiny_cnn",
    "image_size": 32,
    "channels": 1,
    "epochs": 6,
    "batch_size": 4,
    "augmentation": "none",
    "early_stopping": False,
    "seed": 5,
}


def test_worker_killed_mid_training_the_run_is_reaped_and_its_rerun_succeeds_with_its_own_records(
    celery_worker_process,
):
    project = ProjectFactory()
    ds = member(project, Role.DATA_SCIENTIST, username="ds-kill-train")
    version = _small_version(project, 8)
    mark_profiled(version)
    worker = celery_worker_process(queues=["training"], JOB_STEP_DELAY_SECONDS=1, TF_CPP_MIN_LOG_LEVEL="2")
    run = training.training_run_create(project=project, user=ds, dataset_version=version, config=CONFIG)
    wait_for(
        lambda: EpochMetric.objects.filter(run_id=run.pk).exists(),
        timeout=50,
        what=f"the first epoch; worker said:\n{worker.output()[-3000:]}",
    )
    assert (
        _reap_after_kill(
            worker, then_start=lambda: celery_worker_process(queues=["training"], TF_CPP_MIN_LOG_LEVEL="2")
        )
        == 1
    )
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "heartbeats" in run.error and run.finished_at
    epochs = list(EpochMetric.objects.filter(run=run).values_list("epoch", flat=True))
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) < CONFIG["epochs"]
    assert not Artifact.objects.filter(run=run).exists()
    _nothing_running()

    rerun = training.training_run_rerun(run=run, user=ds)
    wait_for(lambda: TrainingRun.objects.get(pk=rerun.pk).status in JobStatus.FINISHED, timeout=50, what="the rerun")
    rerun.refresh_from_db()
    assert rerun.status == JobStatus.SUCCEEDED and rerun.retry_of_id == run.pk, rerun.error
    assert list(EpochMetric.objects.filter(run=rerun).values_list("epoch", flat=True)) == list(range(1, 7))
    assert sorted(Artifact.objects.filter(run=rerun).values_list("kind", flat=True)) == [
        "keras",
        "model_card",
        "savedmodel",
    ]
    assert list(EpochMetric.objects.filter(run=run).values_list("epoch", flat=True)) == epochs
    assert TrainingRun.objects.get(pk=run.pk).status == JobStatus.FAILED
    _nothing_running()
