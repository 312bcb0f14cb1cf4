from django.apps import AppConfig


class RegistryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.registry"

    def ready(self):
        from apps.core.stages import register_stage

        from .selectors import registry_stage_state

        register_stage("registry", "registry-index", registry_stage_state)
