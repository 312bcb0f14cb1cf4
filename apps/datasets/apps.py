from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.datasets"

    def ready(self):
        from celery.signals import worker_ready
        from django.urls import reverse

        from apps.core.reaper import register_reapable
        from apps.core.stages import register_forecast, register_stage
        from apps.projects.comments import register_commentable
        from apps.projects.signals import project_deleting

        from .models import ImportJob, Item
        from .selectors import data_stage_span, data_stage_state, storage_forecast

        register_reapable(ImportJob, on_reaped=_imports_reaped)
        register_stage("data", "datasets-data", data_stage_state, data_stage_span)
        register_forecast("storage_gb", storage_forecast)
        register_commentable(
            "item",
            "item",
            lambda project, pk: Item.objects.filter(project=project, pk=pk).first(),
            lambda project, item: reverse("datasets-item", args=[project.slug, item.pk]),
            lambda item: item.original_name or f"#{item.pk}",
        )
        worker_ready.connect(_resume_imports, weak=False, dispatch_uid="datasets-resume-imports")
        project_deleting.connect(_project_rows, dispatch_uid="datasets-project-deleting")


def _resume_imports(sender=None, **kwargs):
    """A worker that starts picks up imports a killed worker left unfinished (the broker may have
    dropped their messages: the embedded filesystem broker does not redeliver)."""
    queues = set()
    try:
        queues = {q.name for q in sender.app.amqp.queues.consume_from.values()}
    except Exception:  # noqa: BLE001
        pass
    if queues and "ingest" not in queues:
        return
    from .services import import_jobs_resume

    import_jobs_resume()


def _imports_reaped(ids):
    """A reaped import is over: its staged files would wait for nobody."""
    from .models import ImportJob
    from .services.jobs import _staging_cleanup

    for job in ImportJob.objects.filter(pk__in=ids):
        _staging_cleanup(job)


def _project_rows(sender, project, **kwargs):
    """What the data stage keeps of a project being deleted (versions first: they hold its items)."""
    from .models import DatasetVersion, Item

    return [DatasetVersion.objects.filter(project=project), Item.objects.filter(project=project)]
