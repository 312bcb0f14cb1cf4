from django.apps import AppConfig


class LabelingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.labeling"

    def ready(self):
        from apps.core.stages import register_stage

        from .selectors import labeling_stage

        register_stage("labeling", "labeling-overview", labeling_stage)
