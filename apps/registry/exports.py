"""Exports of a registered version into formats that leave the portal: ONNX (float32) for servers,
LiteRT (TFLite) float32 and full-integer int8 for edge devices.

``export_start`` (called at registration) makes an ExportRun row per format and dispatches the
worker task; ``export_execute`` converts the hash-checked .keras model (tf2onnx from a traced
function with the version's input signature; the TFLite converter from the same function with its
variables frozen, int8 calibrated on up to ``CALIBRATION_IMAGES`` training-split images), stores the
file like every artifact (content-addressed, sha256 on the version), and measures parity with the
format's own runtime (onnxruntime; the LiteRT interpreter of ``ai-edge-litert``) on the version's
test split: agreement of the predicted class with Keras, max |Δ probability|, accuracy, and for
int8 the accuracy drop.
Any failure is the export's: it is recorded with its reason, and the version and its Keras artifact
are untouched. PMML and PFA describe classical models (trees, regressions) and have no operators for
convolutional networks, so ONNX is the interchange format here."""

import logging

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.core.jobs import JobStatus, dispatch, transition
from apps.core.storage import blob_put
from apps.training.models import Artifact

from .evaluation import keras_model_of, split_dataset
from .models import ExportRun, ModelVersion

log = logging.getLogger(__name__)
KINDS = ("onnx", "litert_f32", "litert_int8")
FILES = {"onnx": "model.onnx", "litert_f32": "model_f32.tflite", "litert_int8": "model_int8.tflite"}
TITLES = {"onnx": "ONNX (float32)", "litert_f32": "LiteRT (float32)", "litert_int8": "LiteRT (int8, full integer)"}
CALIBRATION_IMAGES = 64


def export_start(*, version):
    """Queue every export of ``version`` (after the current transaction commits)."""
    for kind in KINDS:
        run, created = ExportRun.objects.get_or_create(version=version, kind=kind)
        if created:
            dispatch("apps.registry.tasks.run_export", run.pk, job=run)


PARITY_BATCH = 16  # images per call when the exports are compared (full-resolution inputs are large)


def _traced(model, *, batch, image_size, channels):
    """(``model`` as a traced inference function, its input signature) for ``batch`` images (None: any)."""
    import tensorflow as tf

    spec = [tf.TensorSpec([batch, image_size, image_size, channels], tf.float32, name="image")]
    return tf.function(lambda x: model(x, training=False), input_signature=spec), spec


def onnx_bytes(model, *, image_size, channels):
    import tf2onnx

    fn, spec = _traced(model, batch=None, image_size=image_size, channels=channels)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=tuple(spec), opset=17)
    return proto.SerializeToString()


def litert_bytes(model, *, image_size, channels, calibration=None):
    """A .tflite flatbuffer of ``model`` for one image at a time; full-integer int8 (weights and
    activations; float32 in and out) when ``calibration`` images are given."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn, _ = _traced(model, batch=1, image_size=image_size, channels=channels)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [convert_variables_to_constants_v2(fn.get_concrete_function())]
    )
    if calibration is not None:
        if not len(calibration):
            raise ValueError("int8 needs training-split images to calibrate on, and the split is empty")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def litert_parity(model, data, x, y):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    probs = []
    for i in range(len(x)):
        interpreter.set_tensor(inp["index"], x[i : i + 1].astype(np.float32))
        interpreter.invoke()
        probs.append(np.array(interpreter.get_tensor(out["index"])[0], dtype=np.float64))
    from importlib.metadata import version as dist_version

    return _parity(model, np.array(probs), x, y, f"ai-edge-litert {dist_version('ai-edge-litert')}")


def _in_batches(fn, x):
    """``fn`` over ``x`` in PARITY_BATCH slices, concatenated (never the whole split in one call)."""
    outs = [np.asarray(fn(x[i : i + PARITY_BATCH])) for i in range(0, len(x), PARITY_BATCH)]
    return np.concatenate(outs) if outs else np.zeros((0, 1))


def _parity(model, other_p, x, y, runtime):
    keras_p = _in_batches(lambda b: model(b, training=False), x)
    n = int(len(x))
    out = {
        "n": n,
        "runtime": runtime,
        "agreement": float((keras_p.argmax(1) == other_p.argmax(1)).mean()) if n else None,
        "max_abs_diff": float(np.abs(keras_p - other_p).max()) if n else None,
        "accuracy": float((other_p.argmax(1) == y).mean()) if n else None,
        "keras_accuracy": float((keras_p.argmax(1) == y).mean()) if n else None,
    }
    if n:
        out["accuracy_drop"] = out["keras_accuracy"] - out["accuracy"]
    return out


def split_arrays(version, split="test", limit=None):
    """The version's images and labels of ``split`` as the gate's evaluation feeds them
    (``evaluation.split_dataset``; the version's classes are its dataset version's, in the same order)."""
    batches = []
    count = 0
    for x, y in split_dataset(version, version.dataset_version, split=split):
        batches.append((x.numpy(), y.numpy()))
        count += len(batches[-1][0])
        if limit and count >= limit:
            break
    if not batches:
        return np.zeros((0, 1, 1, 1), np.float32), np.zeros(0, np.int64)
    x, y = np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])
    return (x[:limit], y[:limit]) if limit else (x, y)


def onnx_parity(model, data, x, y):
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    onnx_p = _in_batches(lambda b: sess.run(None, {name: b.astype(np.float32)})[0], x)
    return _parity(model, onnx_p, x, y, f"onnxruntime {ort.__version__}")


def export_execute(*, export_id):
    """Worker side of one export. A redelivered message finds the row no longer queued and stops."""
    if not transition(ExportRun, export_id, JobStatus.QUEUED, JobStatus.RUNNING, started_at=timezone.now()):
        return None
    run = ExportRun.objects.select_related("version__run", "version__dataset_version").get(pk=export_id)
    try:
        version = run.version
        model = keras_model_of(version)
        spec = version.input_spec
        size, channels = int(spec["image_size"]), int(spec.get("channels", 1))
        if run.kind == "onnx":
            data = onnx_bytes(model, image_size=size, channels=channels)
        else:
            calibration = None
            if run.kind == "litert_int8":
                calibration, _ = split_arrays(version, "train", limit=CALIBRATION_IMAGES)
            data = litert_bytes(model, image_size=size, channels=channels, calibration=calibration)
        ExportRun.objects.filter(pk=run.pk).update(progress=0.5)
        x, y = split_arrays(version, "test")
        parity = (onnx_parity if run.kind == "onnx" else litert_parity)(model, data, x, y)
        _store(version, data, run.kind)
        transition(
            ExportRun,
            run.pk,
            JobStatus.RUNNING,
            JobStatus.SUCCEEDED,
            finished_at=timezone.now(),
            parity=parity,
            progress=1.0,
        )
    except Exception as exc:
        log.exception("export %s failed", run)
        transition(
            ExportRun,
            run.pk,
            JobStatus.RUNNING,
            JobStatus.FAILED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}"[:2000],
        )
    return ExportRun.objects.get(pk=run.pk)


def _store(version, data, kind):

    filename = FILES[kind]
    blob = blob_put(data, ext=filename.rsplit(".", 1)[1], content_type="application/octet-stream")
    with transaction.atomic():
        Artifact.objects.get_or_create(
            run=version.run,
            kind=kind,
            defaults={"blob": blob, "sha256": blob.sha256, "size": blob.size, "filename": filename},
        )
        v = ModelVersion.objects.select_for_update().get(pk=version.pk)
        v.artifacts = {
            **v.artifacts,
            kind: {"blob_id": blob.pk, "sha256": blob.sha256, "size": blob.size, "filename": filename},
        }
        v.save(update_fields=["artifacts"])
