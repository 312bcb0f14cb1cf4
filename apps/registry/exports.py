"""Exports of a registered version into formats that leave the portal: ONNX (float32) today.

``export_start`` (called at registration) makes an ExportRun row per format and dispatches the
worker task; ``export_execute`` converts the hash-checked .keras model (tf2onnx, from a traced
function with the version's input signature), stores the file like every artifact (content-addressed,
sha256 on the version), and measures parity with the format's own runtime (onnxruntime) on the
version's test split: agreement of the predicted class with Keras, max |Δ probability|, accuracy.
Any failure is the export's: it is recorded with its reason, and the version and its Keras artifact
are untouched. PMML and PFA describe classical models (trees, regressions) and have no operators for
convolutional networks, so ONNX is the interchange format here."""
import logging

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.core.jobs import JobStatus, dispatch, transition

from .gate import keras_model_of, split_dataset
from .models import ExportRun, ModelVersion

log = logging.getLogger(__name__)
KINDS = ("onnx",)


def export_start(*, version):
    """Queue every export of ``version`` (after the current transaction commits)."""
    from .tasks import run_export

    for kind in KINDS:
        run, created = ExportRun.objects.get_or_create(version=version, kind=kind)
        if created:
            dispatch(run_export, run.pk, job=run)


def onnx_bytes(model, *, image_size, channels):
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec([None, image_size, image_size, channels], tf.float32, name="image"),)
    fn = tf.function(lambda x: model(x, training=False), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
    return proto.SerializeToString()


def test_split_arrays(version):
    """The version's test images and labels as the gate's evaluation feeds them (``gate.split_dataset``;
    the version's classes are its dataset version's, in the same order)."""
    batches = [(x.numpy(), y.numpy()) for x, y in split_dataset(version, version.dataset_version)]
    if not batches:
        return np.zeros((0, 1, 1, 1), np.float32), np.zeros(0, np.int64)
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def onnx_parity(model, data, x, y):
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    keras_p = np.asarray(model(x, training=False)) if len(x) else np.zeros((0, 1))
    onnx_p = sess.run(None, {name: x.astype(np.float32)})[0] if len(x) else np.zeros((0, 1))
    n = int(len(x))
    return {"n": n, "runtime": f"onnxruntime {ort.__version__}",
            "agreement": float((keras_p.argmax(1) == onnx_p.argmax(1)).mean()) if n else None,
            "max_abs_diff": float(np.abs(keras_p - onnx_p).max()) if n else None,
            "accuracy": float((onnx_p.argmax(1) == y).mean()) if n else None,
            "keras_accuracy": float((keras_p.argmax(1) == y).mean()) if n else None}


def export_execute(*, export_id):
    """Worker side of one export. A redelivered message finds the row no longer queued and stops."""
    if not transition(ExportRun, export_id, JobStatus.QUEUED, JobStatus.RUNNING, started_at=timezone.now()):
        return None
    run = ExportRun.objects.select_related("version__run", "version__dataset_version").get(pk=export_id)
    try:
        version = run.version
        model = keras_model_of(version)
        spec = version.input_spec
        data = onnx_bytes(model, image_size=int(spec["image_size"]), channels=int(spec.get("channels", 1)))
        ExportRun.objects.filter(pk=run.pk).update(progress=0.5)
        x, y = test_split_arrays(version)
        parity = onnx_parity(model, data, x, y)
        _store(version, data)
        transition(ExportRun, run.pk, JobStatus.RUNNING, JobStatus.SUCCEEDED, finished_at=timezone.now(),
                   parity=parity, progress=1.0)
    except Exception as exc:  # noqa: BLE001 - the export's failure, recorded; the version stays as it was
        log.exception("export %s failed", run)
        transition(ExportRun, run.pk, JobStatus.RUNNING, JobStatus.FAILED, finished_at=timezone.now(),
                   error=f"{type(exc).__name__}: {exc}"[:2000])
    return ExportRun.objects.get(pk=run.pk)


def _store(version, data):
    from apps.datasets.storage import blob_put
    from apps.training.models import Artifact

    blob = blob_put(data, ext="onnx", content_type="application/octet-stream")
    with transaction.atomic():
        Artifact.objects.get_or_create(run=version.run, kind="onnx", defaults={
            "blob": blob, "sha256": blob.sha256, "size": blob.size, "filename": "model.onnx"})
        v = ModelVersion.objects.select_for_update().get(pk=version.pk)
        v.artifacts = {**v.artifacts, "onnx": {"blob_id": blob.pk, "sha256": blob.sha256, "size": blob.size,
                                               "filename": "model.onnx"}}
        v.save(update_fields=["artifacts"])
