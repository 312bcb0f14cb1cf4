"""Deleting a project: every stage answers ``project_deleting`` with its own rows (projects imports no
later stage) and they go newest stage first, so PROTECT never blocks; blobs stay."""

from django.conf import settings

from apps.core.models import Blob
from apps.datasets.models import DatasetVersion, Item
from apps.labeling.models import Annotation, ItemLabel, LabelClass
from apps.projects.models import Project
from apps.registry.models import ModelVersion
from apps.training.models import TrainingRun
from tests.factories import label_classes, set_label

from .conftest import make_run


def test_a_project_with_items_labels_runs_and_models_is_deleted_whole(api, people, project, dv, register):
    run = make_run(project, dv, "good", user=people["ds"])
    mv = register(run)
    item = Item.objects.filter(project=project).first()
    good, _defect = label_classes(project)
    Annotation.objects.create(item=item, user=people["labeler"], label_class=good)
    set_label(item, good, people["labeler"])
    blobs = Blob.objects.count()

    r = api(people["pm"]).delete(f"/api/v1/projects/{project.slug}/")

    assert r.status_code == 204, r.content
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not ModelVersion.objects.filter(pk=mv.pk).exists() and not TrainingRun.objects.filter(pk=run.pk).exists()
    assert (
        not DatasetVersion.objects.filter(pk=dv.pk).exists() and not Item.objects.filter(project_id=project.pk).exists()
    )
    assert not Annotation.objects.exists() and not ItemLabel.objects.exists()
    assert not LabelClass.objects.filter(project_id=project.pk).exists()
    assert Blob.objects.count() == blobs  # content-addressed, maybe shared: kept


def test_the_stages_answer_in_the_order_the_work_flows():
    """``project_delete`` deletes the receivers' answers in reverse connection order, and receivers
    connect in INSTALLED_APPS order: that order must stay the stage order, the one the layers
    contract of .importlinter writes down (top first)."""
    import configparser
    from pathlib import Path

    lint = configparser.ConfigParser()
    lint.read(Path(__file__).resolve().parents[2] / ".importlinter")
    layers = [
        name.strip() for name in lint["importlinter:contract:stages"]["layers"].split() if name.startswith("apps.")
    ]
    stages = list(reversed(layers))
    assert stages[0] == "apps.core" and stages[-1] == "apps.monitoring"
    assert [a for a in settings.INSTALLED_APPS if a in stages] == stages
