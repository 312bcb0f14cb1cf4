from django.apps import AppConfig


class TrainingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.training"

    def ready(self):
        from apps.core.reaper import register_reapable, register_settler
        from apps.core.stages import register_stage

        from .models import TrainingRun
        from .selectors import training_stage_state

        register_reapable(TrainingRun, on_reaped=_runs_reaped)
        register_settler(_sweeps_settle)
        register_stage("training", "training-runs", training_stage_state)


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
