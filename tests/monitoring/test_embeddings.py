"""Embedding drift with real TensorFlow: a tiny .keras model stored as a registered artifact, the
training split embedded by the reference job, production embeddings compared by MMD²."""

import hashlib

import numpy as np

from apps.core.jobs import JobStatus
from apps.core.storage import blob_put
from apps.monitoring import services
from apps.monitoring.drift import mmd2
from apps.monitoring.embedder import embed_images
from apps.monitoring.models import DriftReport, ReferenceEmbedding, RuleKind
from tests.factories import label_classes, make_item, make_version, png_bytes

from .conftest import log_predictions, served_version


def tiny_keras_artifact(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(6, activation="tanh", name="embedding")(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "model.keras"
    model.save(path)
    data = path.read_bytes()
    blob = blob_put(data, ext="keras", content_type="application/octet-stream")
    return {
        "keras": {
            "blob_id": blob.pk,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "filename": "model.keras",
        }
    }


def test_embedding_drift_against_the_training_split(project, people, tmp_path):
    label_classes(project)
    items = [make_item(project, png_bytes(size=(24, 24), seed=100 + i)) for i in range(12)]
    version = make_version(project, [(it, "train", "good" if i % 2 else "defect") for i, it in enumerate(items)])
    mv = served_version(
        project, version, input_spec={"image_size": 16, "channels": 1}, artifacts=tiny_keras_artifact(tmp_path)
    )
    rule = services.alert_rule_create(
        project=project,
        user=people["ds"],
        data={"name": "Embeddings", "kind": RuleKind.EMBEDDING_DRIFT, "threshold": 0.1, "params": {"min_n": 10}},
    )

    like = [png_bytes(size=(24, 24), seed=900 + i) for i in range(12)]
    odd = [png_bytes(size=(24, 24), value=255 if i % 2 else 0) for i in range(12)]
    spec = dict(image_size=16, channels=1)
    from apps.registry.artifacts import artifact_bytes

    model = artifact_bytes(mv)
    like_emb, odd_emb = embed_images(model, like, **spec), embed_images(model, odd, **spec)
    assert len(like_emb[0]) == 6  # the penultimate layer

    log_predictions(mv, [{"embedding": e} for e in like_emb])
    assert services.rules_evaluate(project=project) == []  # reference not computed yet: queued, not guessed
    ref = ReferenceEmbedding.objects.get(model_version=mv)
    assert ref.status == JobStatus.QUEUED
    services.reference_embedding_execute(ref_id=ref.pk)
    ref.refresh_from_db()
    assert ref.status == JobStatus.SUCCEEDED, ref.error
    assert len(ref.vectors) == 12 and len(ref.vectors[0]) == 6

    assert services.rules_evaluate(project=project) == []
    quiet = DriftReport.objects.get(model_version=mv).embedding_mmd
    assert quiet is not None and quiet < 0.1

    log_predictions(mv, [{"embedding": e} for e in odd_emb] * 2)
    [alert] = services.rules_evaluate(project=project)
    assert alert.rule == rule and alert.value > 0.1 > quiet
    assert DriftReport.objects.get(model_version=mv).embedding_n == 36


def test_reference_job_records_a_tampered_artifact(project, tmp_path):
    label_classes(project)
    items = [make_item(project, png_bytes(size=(24, 24), seed=300 + i)) for i in range(2)]
    version = make_version(project, [(items[0], "train", "good"), (items[1], "train", "defect")])
    art = tiny_keras_artifact(tmp_path)
    art["keras"]["sha256"] = "0" * 64
    mv = served_version(project, version, artifacts=art)
    ref = services.reference_embedding_start(model_version=mv)
    services.reference_embedding_execute(ref_id=ref.pk)
    ref.refresh_from_db()
    assert ref.status == JobStatus.FAILED and "refusing to load" in ref.error
    # a failed reference may be started again
    services.reference_embedding_start(model_version=mv)
    assert ReferenceEmbedding.objects.get(pk=ref.pk).status == JobStatus.QUEUED


def test_mmd_is_near_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 4)), rng.normal(size=(60, 4))
    assert abs(mmd2(a, b)) < 0.05
    assert mmd2(a, b + 3) > 0.3
    assert mmd2(a[:1], b) is None
