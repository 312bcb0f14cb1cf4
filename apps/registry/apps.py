from django.apps import AppConfig


class RegistryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.registry"

    def ready(self):
        from apps.core.stages import register_stage
        from apps.projects.signals import project_deleting, scope_submitted

        from .notify import scope_submitted_notify
        from .selectors import registry_stage_state

        register_stage("registry", "registry-index", registry_stage_state)
        scope_submitted.connect(scope_submitted_notify, dispatch_uid="registry.scope_submitted")
        project_deleting.connect(_project_rows, dispatch_uid="registry-project-deleting")


def _project_rows(sender, project, **kwargs):
    """What the registry keeps of a project being deleted that PROTECTs earlier stages' rows: its
    model versions (the rest goes with the project)."""
    from .models import ModelVersion

    return [ModelVersion.objects.filter(registered_model__project=project)]
