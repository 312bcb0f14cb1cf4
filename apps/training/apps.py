from django.apps import AppConfig


class TrainingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.training"

    def ready(self):
        from apps.core.reaper import register_reapable
        from apps.core.stages import register_stage

        from .models import TrainingRun
        from .selectors import training_stage_state

        register_reapable(TrainingRun)
        register_stage("training", "training-runs", training_stage_state)
