from django.apps import AppConfig


class TrainingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.training"

    def ready(self):
        from django.urls import reverse

        from apps.core.reaper import register_reapable, register_settler
        from apps.core.stages import register_forecast, register_stage
        from apps.projects.comments import register_commentable
        from apps.projects.signals import project_deleting

        from .models import TrainingRun
        from .selectors import compute_forecast, training_stage_span, training_stage_state

        register_reapable(TrainingRun, on_reaped=_runs_reaped)
        register_settler(_sweeps_settle)
        register_settler(_gpu_runs_without_worker)
        register_stage("training", "training-runs", training_stage_state, training_stage_span)
        register_forecast("compute_hours", compute_forecast)
        project_deleting.connect(_project_rows, dispatch_uid="training-project-deleting")
        register_commentable(
            "run",
            "run",
            lambda project, pk: TrainingRun.objects.filter(project=project, pk=pk).first(),
            lambda project, run: reverse("training-run", args=[project.slug, run.pk]),
            lambda run: f"#{run.pk}" + (f" {run.name}" if run.name else ""),
        )


def _runs_reaped(ids):
    """A sweep whose trial was reaped settles at once (failed, or the best of the others)."""
    from .models import TrainingRun
    from .services import sweep_refresh

    for sweep_id in set(TrainingRun.objects.filter(pk__in=ids, sweep__isnull=False).values_list("sweep_id", flat=True)):
        sweep_refresh(sweep_id=sweep_id)


def _sweeps_settle(now):
    """Sweeps still active although none of their runs is (a worker died between a run's end and
    the sweep's refresh): settle them from their runs."""
    from apps.core.jobs import JobStatus

    from .models import Sweep
    from .services import sweep_refresh

    stuck = Sweep.objects.filter(status__in=JobStatus.ACTIVE).exclude(runs__status__in=JobStatus.ACTIVE)
    settled = 0
    for sweep_id in stuck.values_list("pk", flat=True).distinct():
        settled += sweep_refresh(sweep_id=sweep_id).status in JobStatus.FINISHED
    return settled


def _gpu_runs_without_worker(now):
    """Runs queued for the gpu queue longer than GPU_QUEUE_WAIT_SECONDS while no live worker listens
    there are failed with that reason (instead of waiting forever)."""
    from datetime import timedelta

    from django.conf import settings

    from apps.core.jobs import JobStatus, transition
    from apps.core.selectors import queue_has_listener

    from .models import TrainingRun

    waited = now - timedelta(seconds=settings.GPU_QUEUE_WAIT_SECONDS)
    stuck = list(
        TrainingRun.objects.filter(status=JobStatus.QUEUED, queue="gpu", created_at__lt=waited).values_list(
            "pk", flat=True
        )
    )
    if not stuck or queue_has_listener("gpu"):
        return 0
    minutes = settings.GPU_QUEUE_WAIT_SECONDS / 60
    reason = (
        f"No live worker listened on the gpu queue for {minutes:g} minutes after this run was queued; it was "
        "failed instead of waiting forever. Start a GPU worker (docker compose --profile gpu up worker-gpu) "
        "and retry it, or rerun it on the CPU."
    )
    return sum(
        1
        for pk in stuck
        if transition(TrainingRun, pk, JobStatus.QUEUED, JobStatus.FAILED, finished_at=now, error=reason)
    )


def _project_rows(sender, project, **kwargs):
    """What training keeps of a project being deleted: its runs, then its sweeps."""
    from .models import Sweep, TrainingRun

    return [TrainingRun.objects.filter(project=project), Sweep.objects.filter(project=project)]
