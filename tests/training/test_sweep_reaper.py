"""The reaper leaves no sweep active for ever: a sweep whose trial was reaped settles at once, and a
sweep still marked active after all its runs ended (its worker died between the two) is settled."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.reaper import _REAPABLE, reap_stuck_jobs
from apps.datasets.models import ImportJob
from apps.profiling.models import ProfileRun
from apps.training.models import Sweep, TrainingRun
from tests.factories import make_item, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(project):
    return make_version(project, [(make_item(project), "train", "good")])


def _sweep(project, version, runs):
    sweep = Sweep.objects.create(project=project, dataset_version=version, method="grid", status="running")
    made = []
    for i, (status, extra) in enumerate(runs):
        made.append(
            TrainingRun.objects.create(
                project=project, dataset_version=version, sweep=sweep, trial_index=i, status=status, **extra
            )
        )
    return sweep, made


def test_every_job_with_a_running_status_is_reapable():
    assert {ImportJob, ProfileRun, TrainingRun} <= set(_REAPABLE)


def test_a_reaped_trial_settles_its_sweep_on_the_best_other_trial(project, version):
    old = timezone.now() - timedelta(minutes=30)
    sweep, (dead, done) = _sweep(
        project,
        version,
        [
            ("running", {"started_at": old, "heartbeat_at": old}),
            ("succeeded", {"best_val": {"val_accuracy": 0.8}, "finished_at": old}),
        ],
    )
    assert reap_stuck_jobs(timeout_seconds=120) == 1
    dead.refresh_from_db(), sweep.refresh_from_db()
    assert dead.status == "failed" and "heartbeats" in dead.error
    assert sweep.status == "succeeded" and sweep.best_run_id == done.pk


def test_a_sweep_whose_only_trial_was_reaped_fails(project, version):
    old = timezone.now() - timedelta(minutes=30)
    sweep, _ = _sweep(project, version, [("running", {"started_at": old, "heartbeat_at": old})])
    reap_stuck_jobs(timeout_seconds=120)
    sweep.refresh_from_db()
    assert sweep.status == "failed"


def test_a_sweep_left_running_after_its_runs_ended_is_settled(project, version):
    sweep, _ = _sweep(project, version, [("failed", {}), ("cancelled", {})])
    alive, _ = _sweep(project, version, [("running", {"started_at": timezone.now(), "heartbeat_at": timezone.now()})])
    assert reap_stuck_jobs(timeout_seconds=120) == 1
    sweep.refresh_from_db(), alive.refresh_from_db()
    assert sweep.status == "failed" and sweep.finished_at
    assert alive.status == "running"  # its run is alive: nothing to settle
