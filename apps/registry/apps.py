from django.apps import AppConfig


class RegistryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.registry"

    def ready(self):
        from apps.core.stages import register_stage

        from .selectors import registry_stage_state

        register_stage("registry", "registry-index", registry_stage_state)

        from apps.projects.signals import scope_submitted

        from .notify import scope_submitted_notify

        scope_submitted.connect(scope_submitted_notify, dispatch_uid="registry.scope_submitted")
