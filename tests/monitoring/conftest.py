import uuid

import pytest
from django.utils import timezone

from apps.registry.models import ModelVersion, RegisteredModel
from apps.serving.models import PredictionLog
from apps.serving.signals import predictions_logged
from apps.training.ml.config import TrainConfig
from apps.training.models import TrainingRun
from tests.factories import label_classes, make_item, make_version, png_bytes


def served_version(project, version=None, stage="production", name="screws", input_spec=None, artifacts=None):
    """A registered model version (with its run and dataset version) as serving would use it."""
    if version is None:
        label_classes(project)
        items = [make_item(project, png_bytes(seed=1000 + i)) for i in range(4)]
        version = make_version(
            project,
            [
                (items[0], "train", "good"),
                (items[1], "train", "defect"),
                (items[2], "test", "good"),
                (items[3], "test", "defect"),
            ],
        )
    run = TrainingRun.objects.create(
        project=project, dataset_version=version, status="succeeded", config=TrainConfig().to_dict()
    )
    rm, _ = RegisteredModel.objects.get_or_create(project=project, name=name)
    number = ModelVersion.objects.filter(registered_model=rm).count() + 1
    return ModelVersion.objects.create(
        registered_model=rm,
        number=number,
        run=run,
        dataset_version=version,
        stage=stage,
        classes=["defect", "good"],
        input_spec=input_spec or {"image_size": 32, "channels": 1},
        artifacts=artifacts or {},
        stage_changed_at=timezone.now(),
    )


def log_predictions(model_version, rows, at=None):
    """Bulk-create PredictionLog rows and send ``predictions_logged`` as the serving app does.

    ``rows``: dicts with any of latency_ms, input_stats, predicted_class, confidence, input_blob,
    embedding, created_at."""
    at = at or timezone.now()
    objs = []
    for r in rows:
        objs.append(
            PredictionLog(
                project=model_version.registered_model.project,
                registered_model=model_version.registered_model,
                model_version=model_version,
                created_at=r.get("created_at", at),
                request_id=uuid.uuid4().hex,
                latency_ms=r.get("latency_ms", 20.0),
                input_sha256=r.get("sha", uuid.uuid4().hex + uuid.uuid4().hex),
                input_stats=r.get("input_stats", {}),
                predicted_class=r.get("predicted_class", "good"),
                confidence=r.get("confidence", 0.95),
                probabilities=r.get("probabilities", {}),
                input_blob=r.get("input_blob"),
                embedding=r.get("embedding", []),
            )
        )
    created = PredictionLog.objects.bulk_create(objs)
    if any(o.pk is None for o in created):  # backends that do not return ids
        created = list(PredictionLog.objects.filter(model_version=model_version).order_by("-id")[: len(objs)])[::-1]
    predictions_logged.send(sender=PredictionLog, logs=created)
    return created


@pytest.fixture
def mv(project):
    return served_version(project)


@pytest.fixture(autouse=True)
def _fresh_request_counters():
    from apps.monitoring.middleware import counters

    counters.take()
    yield
    counters.take()
