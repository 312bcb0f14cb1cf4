"""Runs launched, estimated, rerun and cancelled."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.jobs import JobStatus, dispatch, launches_jobs, task_named, transition
from apps.core.text import clean_name
from apps.projects.services import scope_gate_require

from ..estimate import estimate_for_version, say
from ..ml.config import planned_epochs
from ..models import Sweep, TrainingRun
from .checks import _checked, base_model_store

log = logging.getLogger(__name__)

# Runs ----------------------------------------------------------------------------------------------


def _queue_for(config):
    return "gpu" if config.get("accelerator") == "gpu" else "training"


def _enqueue(run):
    settle = (lambda: sweep_refresh(sweep_id=run.sweep_id)) if run.sweep_id else None
    task = task_named("apps.training.tasks.run_training")
    dispatch(task.s(run.pk).set(queue=run.queue), job=run, on_unavailable=settle)


def training_run_estimate(*, project, dataset_version, config=None):
    """What a launch with these arguments would expect, checked like a launch, without launching."""

    version, config = _checked(project, dataset_version, config)
    seconds, basis = estimate_for_version(project, version, config)
    return {
        "seconds": round(seconds, 1),
        "text": say(seconds),
        "basis": basis,
        "architecture": config["architecture"],
        "dataset_version": version.number,
    }


@launches_jobs
@transaction.atomic
def training_run_create(
    *,
    project,
    user,
    dataset_version,
    config=None,
    base_model_file=None,
    base_model=None,
    name="",
    sweep=None,
    trial_index=None,
    retry_of=None,
):
    scope_gate_require(project, "Training")
    version, config = _checked(project, dataset_version, config)
    if config["architecture"] == "finetune":
        if base_model is None:
            if base_model_file is None:
                raise ValidationError({"base_model": ["Fine-tuning needs a .keras model file."]})
            base_model = base_model_store(base_model_file, config=config)
    else:
        base_model = None

    estimated, basis = estimate_for_version(project, version, config)
    run = TrainingRun.objects.create(
        estimated_seconds=estimated,
        estimate_basis=basis[:200],
        project=project,
        dataset_version=version,
        config=config,
        base_model=base_model,
        name=clean_name(name)[:120],
        queue=_queue_for(config),
        created_by=user if getattr(user, "is_authenticated", False) else None,
        sweep=sweep,
        trial_index=trial_index,
        retry_of=retry_of,
        epochs_total=planned_epochs(config),
    )
    if sweep is None:
        audit_record(
            actor=user,
            action="training_run.launch",
            project=project,
            obj=run,
            data={"dataset_version": version.number, "config": config},
        )
    _enqueue(run)
    return run


@launches_jobs
def training_run_rerun(*, run, user):
    """The same config (seed included) on the same version, so the same split and seeds: a retry
    of a failed run, or a reproduction of a finished one."""
    if run.status in JobStatus.ACTIVE:
        raise ValidationError(f"{run} is still {run.status}; cancel it or wait for it to finish.")
    new = training_run_create(
        project=run.project,
        user=user,
        dataset_version=run.dataset_version,
        config=run.config,
        base_model=run.base_model,
        name=run.name,
        retry_of=run,
    )
    audit_record(actor=user, action="training_run.rerun", project=run.project, obj=new, data={"of": run.pk})
    return new


def training_run_cancel(*, run, user):
    """A queued run is cancelled at once; a running one is asked to stop (within one batch)."""
    cancelled_now = transition(
        TrainingRun, run.pk, JobStatus.QUEUED, JobStatus.CANCELLED, finished_at=timezone.now(), cancel_requested=True
    )
    if (
        not cancelled_now
        and TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(cancel_requested=True) != 1
    ):
        raise ValidationError(
            f"{run} is {TrainingRun.objects.get(pk=run.pk).status}; only a queued or running run can be cancelled."
        )
    audit_record(actor=user, action="training_run.cancel", project=run.project, obj=run)
    run.refresh_from_db()
    if run.sweep_id and run.status in JobStatus.FINISHED:
        sweep_refresh(sweep_id=run.sweep_id)
    return run


def sweep_refresh(*, sweep_id):
    """Settle a sweep from its runs: running while any runs; when all finished, the best succeeded
    trial by the sweep's validation metric."""
    sweep = Sweep.objects.get(pk=sweep_id)
    runs = list(sweep.runs.all())
    if any(r.status in JobStatus.ACTIVE for r in runs):
        if any(r.status != JobStatus.QUEUED for r in runs):
            transition(Sweep, sweep_id, JobStatus.QUEUED, JobStatus.RUNNING)
        return sweep
    done = [r for r in runs if r.status == JobStatus.SUCCEEDED and sweep.metric in (r.best_val or {})]
    if done:
        pick = max if sweep.higher_is_better else min
        best = pick(done, key=lambda r: r.best_val[sweep.metric])
        transition(Sweep, sweep_id, JobStatus.ACTIVE, JobStatus.SUCCEEDED, best_run=best, finished_at=timezone.now())
    elif all(r.status == JobStatus.CANCELLED for r in runs):
        transition(Sweep, sweep_id, JobStatus.ACTIVE, JobStatus.CANCELLED, finished_at=timezone.now())
    else:
        transition(
            Sweep, sweep_id, JobStatus.ACTIVE, JobStatus.FAILED, finished_at=timezone.now(), error="No trial succeeded."
        )
    sweep.refresh_from_db()
    return sweep
