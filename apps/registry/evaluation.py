"""A registry version's model and a dataset version's split as that model is fed: the gate's champion
evaluation and the exports' agreement checks both read them here."""

import os
import tempfile

from apps.training.services import storage_sources

from .artifacts import artifact_bytes


def keras_model_of(version):
    """``version``'s Keras model: the .keras bytes through ``artifact_bytes`` (hash-checked), loaded
    with safe_mode (the gate's champion evaluation and the exports both load it here)."""
    import keras

    from apps.training.ml import layers  # noqa: F401  (the portal's own layers, registered for a safe load)

    data = artifact_bytes(version, "keras")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        return keras.models.load_model(path, safe_mode=True, compile=False)


def split_dataset(version, dataset_version, split="test"):
    """``dataset_version``'s split as ``version``'s model is fed, through the training input pipeline
    (``apps.training.ml.data.make_dataset``: the same decode, resize and item order as a run's own
    evaluation), labels as indices of the split's classes. Any storage: local paths, else a reader."""
    from apps.training.ml.data import make_dataset

    classes = list(dataset_version.classes)
    entries = list(dataset_version.entries.filter(split=split).select_related("item__blob").order_by("item_id"))
    # Local paths on a local disk; on object storage (no path) the names and a reader through the
    # storage API (``hasattr(storage, "path")`` is true on every Storage: S3's raises NotImplementedError).
    sources, reader = storage_sources([e.item.blob.path for e in entries])
    return make_dataset(
        sources,
        [classes.index(e.label) for e in entries],
        image_size=int(version.input_spec["image_size"]),
        channels=int(version.input_spec.get("channels", 1)),
        batch_size=32,
        cache=False,
        reader=reader,
    )


def evaluate_on_split(version, dataset_version, split="test"):
    """``version``'s model run on ``dataset_version``'s split (``split_dataset``) and scored by the
    same ``classification_metrics`` as a run's own evaluation."""
    import numpy as np

    from apps.training.ml.evaluate import classification_metrics, predict

    classes = list(dataset_version.classes)
    y_true, probs = predict(keras_model_of(version), split_dataset(version, dataset_version, split))
    # The champion's output index → the candidate split's class index (matched by name).
    mapped = np.zeros((len(y_true), len(classes)))
    if len(y_true):
        mapped[:, [classes.index(c) for c in version.classes]] = probs
    return classification_metrics(y_true, mapped, classes)
