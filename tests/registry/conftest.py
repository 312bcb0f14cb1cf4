"""Registry fixtures: succeeded runs made directly (TrainingRun + Artifact rows pointing at real
blobs holding a tiny real Keras model), on tiny real images."""

import io
import json
import os
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest

from apps.core.storage import blob_put
from apps.training.models import Artifact, TrainingRun
from tests.factories import make_item, make_version, mark_profiled
from tests.training.conftest import tiny_png

SIZE = 32
_MODELS = {}


def keras_model_bytes(kind="good"):
    """A real .keras file: mean brightness → class. Classes are ["defect", "good"] (sorted); defect
    images are bright. ``good`` gets every tiny image right, ``bad`` every one wrong."""
    if kind in _MODELS:
        return _MODELS[kind]
    import keras

    inputs = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    sign = 1.0 if kind == "good" else -1.0
    dense.set_weights([np.array([[20.0 * sign, -20.0 * sign]]), np.array([-10.0 * sign, 10.0 * sign])])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as fh:
            _MODELS[kind] = fh.read()
    return _MODELS[kind]


def tiny_dataset_version(project, n=12, seed=0, profiled=True, offset=0):
    splits = ["train"] * 4 + ["val"] * 2 + ["test"] * 6
    entries = []
    for i in range(n):
        label = ("good", "defect")[i % 2]
        item = make_item(project, data=tiny_png(offset + i, label), name=f"s{offset + i}.png")
        entries.append((item, splits[i % len(splits)], label))
    dv = make_version(project, entries, seed=seed)
    if profiled:
        mark_profiled(dv)
    return dv


def measured_metrics(model_bytes, dv):
    """The model's real test-split metrics on ``dv`` (TF inference), as a run would store them."""
    from apps.registry.evaluation import evaluate_on_split

    blob = blob_put(model_bytes, ext="keras", content_type="application/octet-stream")
    fake = SimpleNamespace(
        artifacts={"keras": {"blob_id": blob.pk, "sha256": blob.sha256}},
        input_spec={"image_size": SIZE, "channels": 1},
        classes=list(dv.classes),
    )
    return evaluate_on_split(fake, dv)


def make_run(project, dv, kind="good", metrics=None, user=None, status="succeeded"):
    data = keras_model_bytes(kind)
    metrics = metrics if metrics is not None else measured_metrics(data, dv)
    run = TrainingRun.objects.create(
        project=project,
        dataset_version=dv,
        status=status,
        created_by=user,
        name=f"{kind} model",
        config={
            "architecture": "tiny_cnn",
            "image_size": SIZE,
            "channels": 1,
            "epochs": 1,
            "batch_size": 4,
            "learning_rate": 0.001,
            "seed": 7,
        },
        test_metrics=metrics if status == "succeeded" else {},
        tf_version="2.21.0",
        epochs_total=1,
        epochs_run=1,
    )
    if status == "succeeded":
        blob = blob_put(data, ext="keras", content_type="application/octet-stream")
        Artifact.objects.create(
            run=run, kind="keras", blob=blob, sha256=blob.sha256, size=blob.size, filename="model.keras"
        )
        card = json.dumps({"schema": "ml-portal/model-card@1", "name": run.name, "classes": dv.classes}).encode()
        cblob = blob_put(card, ext="json", content_type="application/json")
        Artifact.objects.create(
            run=run, kind="model_card", blob=cblob, sha256=cblob.sha256, size=cblob.size, filename="model_card.json"
        )
    return run


@pytest.fixture
def dv(project):
    return tiny_dataset_version(project)


@pytest.fixture
def good_run(project, dv, people):
    return make_run(project, dv, "good", user=people["ds"])


@pytest.fixture
def register(people, django_capture_on_commit_callbacks):
    """Registers through the service and runs its on-commit work (emails) as a real commit would."""
    from apps.registry.services import model_version_register

    def do(run, name="screws", user=None):
        with django_capture_on_commit_callbacks(execute=True):
            return model_version_register(run=run, registered_model_name=name, user=user or people["ds"])

    return do


@pytest.fixture
def second_manager(project):
    from apps.accounts.models import Role
    from tests.factories import member

    return member(project, Role.MANAGER, username="manager2")


@pytest.fixture
def ds_manager(project):
    """One person who is both data scientist and manager (four eyes must still hold)."""
    from apps.accounts.models import Role
    from tests.factories import member

    return member(project, Role.DATA_SCIENTIST, Role.MANAGER, username="dsmanager")


@pytest.fixture
def in_production(project, dv, register, people, second_manager):
    """v1 of ``screws`` approved into production through the real services."""
    from apps.registry import services

    def do(run=None, name="screws"):
        v = register(run or make_run(project, dv, "good"), name=name)
        req = services.promotion_request_create(version=v, user=people["ds"], note="first model")
        assert req.gate_passed, req.gate["failures"]
        services.promotion_request_approve(request=req, user=people["manager"], comment="ok")
        v.refresh_from_db()
        return v

    return do


def png(i=0, label="defect"):
    return tiny_png(i, label)


def image_bytes_io(data):
    return io.BytesIO(data)
