from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.monitoring"

    def ready(self):
        from django.core.signals import request_finished
        from django.urls import reverse

        from apps.core.reaper import register_reapable
        from apps.core.stages import StageState, register_stage
        from apps.projects.comments import register_commentable
        from apps.serving.signals import predictions_logged, predictions_lost, register_request_observer

        from .middleware import flush_if_due, record_now
        from .models import Alert, ReferenceEmbedding
        from .rollups import on_predictions_logged
        from .selectors import monitoring_span
        from .services import on_predictions_lost

        predictions_logged.connect(on_predictions_logged, dispatch_uid="monitoring-rollups")
        predictions_lost.connect(on_predictions_lost, dispatch_uid="monitoring-log-loss")
        request_finished.connect(flush_if_due, dispatch_uid="monitoring-request-counters")
        register_request_observer(record_now)
        register_reapable(ReferenceEmbedding)

        def monitoring_state(project):
            from . import selectors

            firing = selectors.firing_count(project)
            if firing:
                return StageState("attention", f"{firing} alert{'s' if firing != 1 else ''} firing")
            if not selectors.rules_of(project).exists() and selectors.last_prediction_at(project) is None:
                return StageState("not_started", "No predictions or alert rules yet")
            return StageState("done", "all quiet")

        register_stage("monitoring", "monitoring-dashboard", monitoring_state, monitoring_span)
        register_commentable(
            "alert",
            "alert",
            lambda project, pk: Alert.objects.filter(project=project, pk=pk).first(),
            lambda project, alert: reverse("monitoring-alert", args=[project.slug, alert.pk]),
            lambda alert: f"#{alert.pk} {alert.title}",
        )
