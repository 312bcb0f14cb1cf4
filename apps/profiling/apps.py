from django.apps import AppConfig


class ProfilingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.profiling"

    def ready(self):
        from apps.core.reaper import register_reapable
        from apps.core.stages import register_stage

        from .models import ProfileRun
        from .selectors import stage_state

        register_reapable(ProfileRun)
        register_stage("profile", "profiling-index", stage_state)
