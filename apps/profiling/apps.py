from django.apps import AppConfig


class ProfilingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.profiling"

    def ready(self):
        from apps.core.reaper import register_reapable
        from apps.core.stages import register_stage
        from apps.datasets.signals import version_ready

        from .models import ProfileRun
        from .selectors import stage_span, stage_state

        register_reapable(ProfileRun)
        register_stage("profile", "profiling-index", stage_state, stage_span)
        version_ready.connect(_profile_ready_version, dispatch_uid="profiling-version-ready")


def _profile_ready_version(sender, version, user=None, **kwargs):
    """Every ready version is profiled at once: the data-quality gate needs its profile."""
    from .services import profile_run_start

    profile_run_start(version=version, user=user)
