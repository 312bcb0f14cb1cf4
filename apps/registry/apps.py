from django.apps import AppConfig


class RegistryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.registry"

    def ready(self):
        from django.urls import reverse

        from apps.core.stages import register_stage
        from apps.projects.comments import register_commentable
        from apps.projects.signals import comment_mentioned, project_deleting, scope_submitted

        from .models import ModelVersion, PromotionRequest
        from .notify import comment_mention_notify, scope_submitted_notify
        from .selectors import registry_stage_span, registry_stage_state

        register_stage("registry", "registry-index", registry_stage_state, registry_stage_span)
        scope_submitted.connect(scope_submitted_notify, dispatch_uid="registry.scope_submitted")
        project_deleting.connect(_project_rows, dispatch_uid="registry-project-deleting")
        comment_mentioned.connect(comment_mention_notify, dispatch_uid="registry.comment_mentioned")
        register_commentable(
            "version",
            "model version",
            lambda project, pk: (
                ModelVersion.objects.filter(registered_model__project=project, pk=pk)
                .select_related("registered_model")
                .first()
            ),
            lambda project, v: reverse("registry-version", args=[project.slug, v.registered_model_id, v.number]),
        )
        register_commentable(
            "request",
            "promotion request",
            lambda project, pk: (
                PromotionRequest.objects.filter(version__registered_model__project=project, pk=pk)
                .select_related("version__registered_model")
                .first()
            ),
            lambda project, r: reverse("registry-request", args=[project.slug, r.pk]),
            lambda r: f"#{r.pk} ({r.version})",
        )


def _project_rows(sender, project, **kwargs):
    """What the registry keeps of a project being deleted that PROTECTs earlier stages' rows: its
    model versions (the rest goes with the project)."""
    from .models import ModelVersion

    return [ModelVersion.objects.filter(registered_model__project=project)]
