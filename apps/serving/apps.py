from django.apps import AppConfig


class ServingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.serving"

    def ready(self):
        from apps.core.stages import register_stage
        from apps.registry.gate import register_latency_probe
        from apps.registry.selectors import register_canary_comparison

        from .latency import latency_probe
        from .selectors import canary_comparison, serving_stage_span, serving_stage_state

        register_stage("serving", "serving-index", serving_stage_state, serving_stage_span)
        register_latency_probe(latency_probe)
        register_canary_comparison(canary_comparison)
