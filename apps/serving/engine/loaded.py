"""One registry version in memory (its Keras model or its ONNX export, and its batcher), loaded only
when its artifact's bytes hash to the registered sha256 (Keras safe mode)."""

import threading

import numpy as np
from django.conf import settings

from apps.registry.artifacts import artifact_bytes

from .batcher import Batcher

ENGINES = ("keras", "onnx")


class ExplainUnavailable(ValueError):
    """Heatmaps asked of a model that cannot draw them (an ONNX Runtime session)."""


class LoadedModel:
    """One registry version in memory: its Keras model (a compiled batch function) or its ONNX export
    (an ONNX Runtime session), and a batcher."""

    def __init__(self, *, version, model, max_batch, max_wait_ms, engine="keras"):
        spec = version.input_spec or {}
        self.version_id, self.number = version.pk, version.number
        self.registered_model_id = version.registered_model_id
        self.project_id = version.registered_model.project_id
        self.name = version.registered_model.name
        self.classes = list(version.classes)
        self.image_size, self.channels = int(spec.get("image_size", 128)), int(spec.get("channels", 1))
        self.engine = engine
        self._explain, self._explain_lock = None, threading.Lock()
        self.sha256 = version.artifacts["onnx" if engine == "onnx" else "keras"]["sha256"]
        self.model = model
        if engine == "onnx":
            name = model.get_inputs()[0].name
            self._fn = lambda x: model.run(None, {name: x})[0]
        else:
            import tensorflow as tf

            signature = [tf.TensorSpec([None, self.image_size, self.image_size, self.channels], tf.float32)]
            # The concrete function: no Python-side input binding per call (~0.15 ms a batch here).
            self._fn = tf.function(
                lambda x: model(x, training=False), input_signature=signature
            ).get_concrete_function()
        self.batcher = Batcher(
            self.infer, max_batch=max_batch, max_wait_ms=max_wait_ms, name=f"batcher-{self.name}-v{self.number}"
        )

    def infer(self, x) -> np.ndarray:
        """Probabilities [n, k] for a float32 batch [n, S, S, C] (the batcher's call; the bench's limit)."""
        return np.asarray(self._fn(np.asarray(x, dtype=np.float32)), dtype=np.float64)

    def explain(self, x) -> list:
        """A heatmap PNG per image of the float32 batch ``x``: where the model looked (Grad-CAM, or a
        patch recipe's own patch-score map). Off the batcher: the caller asked for it and waits."""
        if self.engine != "keras":
            raise ExplainUnavailable(
                f"{self.name} v{self.number} is served by ONNX Runtime, which has no gradients: "
                "switch its route's engine to Keras to ask for heatmaps."
            )
        from apps.training.ml import explain  # TensorFlow: loaded with the Keras model already

        with self._explain_lock:
            if self._explain is None:
                try:
                    self._explain = explain.explain_fn(self.model)
                except explain.NotExplainable as exc:
                    raise ExplainUnavailable(str(exc)) from exc
        x = np.asarray(x, dtype=np.float32)
        return explain.heatmap_pngs(x, self._explain(x))

    def spec(self):
        return {"image_size": self.image_size, "channels": self.channels}

    def __repr__(self):
        return f"<LoadedModel {self.name} v{self.number} on {self.engine}>"


def load_version(version, *, max_batch=None, max_wait_ms=None, engine="keras") -> LoadedModel:
    """Load ``version`` fully on ``engine`` (keras: its .keras file; onnx: its ONNX export, run by ONNX
    Runtime), refusing an artifact whose sha256 is not the registered one."""

    if engine not in ENGINES:
        raise ValueError(f"unknown serving engine {engine!r}")
    if engine == "onnx":
        import onnxruntime as ort

        if "onnx" not in (version.artifacts or {}):
            raise ValueError(f"{version} has no ONNX export to serve (see its version page's Exports)")
        data = artifact_bytes(version, "onnx")  # hash-checked
        options = ort.SessionOptions()
        model = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    else:
        from apps.registry.bundle_runtime import load_model_bytes
        from apps.training.ml import layers  # noqa: F401  (the portal's own layers, registered for a safe load)

        data = artifact_bytes(version, "keras")  # ArtifactIntegrityError when the bytes are not the registered ones
        model = load_model_bytes(data, version.artifacts["keras"]["sha256"])  # safe_mode=True; checks the hash again
    loaded = LoadedModel(
        version=version,
        model=model,
        engine=engine,
        max_batch=max_batch or settings.SERVING_MAX_BATCH,
        max_wait_ms=settings.SERVING_MAX_WAIT_MS if max_wait_ms is None else max_wait_ms,
    )
    loaded.infer(np.zeros((1, loaded.image_size, loaded.image_size, loaded.channels), np.float32))  # trace now
    return loaded
