from django.apps import AppConfig


class ServingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.serving"

    def ready(self):
        from apps.core.stages import register_stage

        from .selectors import serving_stage_state

        register_stage("serving", "serving-index", serving_stage_state)
