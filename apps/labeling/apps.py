from django.apps import AppConfig


class LabelingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.labeling"

    def ready(self):
        from apps.core.stages import register_forecast, register_stage
        from apps.datasets.labels import register_label_reader
        from apps.datasets.signals import items_imported
        from apps.projects.signals import project_deleting

        from .forecast import labeling_forecast
        from .selectors import ItemLabels, labeling_stage, labeling_stage_span

        register_stage("labeling", "labeling-overview", labeling_stage, labeling_stage_span)
        register_forecast("labeling_hours", labeling_forecast)
        register_label_reader(ItemLabels())
        items_imported.connect(_folder_labels, dispatch_uid="labeling-folder-labels")
        project_deleting.connect(_project_rows, dispatch_uid="labeling-project-deleting")


def _project_rows(sender, project, **kwargs):
    """What labeling keeps of a project being deleted: the labels of its items, then its classes
    (which the labels PROTECT)."""
    from .models import Annotation, ItemLabel, LabelClass, ReviewDecision

    return [
        ReviewDecision.objects.filter(item__project=project),
        Annotation.objects.filter(item__project=project),
        ItemLabel.objects.filter(item__project=project),
        LabelClass.objects.filter(project=project),
    ]


def _folder_labels(sender, job, labels, **kwargs):
    from .services import folder_labels_apply

    folder_labels_apply(project=job.project, labels=labels, user=job.created_by)
