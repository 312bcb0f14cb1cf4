"""Artifacts: the Keras model (.keras), a SavedModel export (zipped), and the model card."""

import hashlib
import io
import os
import platform
import zipfile


def save_keras(model, path):
    model.save(path)
    return path


def export_savedmodel_zip(model, directory, zip_path):
    """``model.export`` writes a TF SavedModel (serving signature, no Keras needed to load it);
    the folder is zipped into one artifact with stable entry order and timestamps."""
    model.export(directory, format="tf_saved_model", verbose=False)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                info = zipfile.ZipInfo(os.path.relpath(full, directory), date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(full, "rb") as fh:
                    zf.writestr(info, fh.read())
    return zip_path


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_card(
    *,
    name,
    config,
    classes,
    metrics,
    training_seconds,
    epochs_run,
    dataset=None,
    code_version="",
    seeds=None,
    model_params=None,
    notes="",
):
    """A plain dict: what the model is, what it was trained on, how, and how well it did."""
    import keras
    import tensorflow as tf

    test = metrics or {}
    return {
        "schema": "ml-portal/model-card@1",
        "name": name,
        "task": "image classification",
        "classes": list(classes),
        "dataset": dataset or {},
        "code_version": code_version,
        "hyperparameters": dict(config),
        "seeds": seeds or {},
        "metrics": {
            "test": {
                k: test.get(k)
                for k in (
                    "n",
                    "accuracy",
                    "macro_precision",
                    "macro_recall",
                    "macro_f1",
                    "roc_auc",
                    "average_precision",
                )
                if k in test
            },
            "per_class": test.get("per_class", {}),
        },
        "training": {
            "seconds": round(float(training_seconds), 2),
            "epochs_run": epochs_run,
            "parameters": model_params,
        },
        "environment": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "input": {
            "height": config.get("image_size"),
            "width": config.get("image_size"),
            "channels": config.get("channels"),
            "pixel_range": [0, 255],
            "note": "The model rescales inside itself: feed raw pixels resized to the input size.",
        },
        "notes": notes,
    }


def card_markdown(card):
    buf = io.StringIO()
    buf.write(f"# Model card: {card['name']}\n\n")
    ds = card.get("dataset") or {}
    buf.write(f"- Dataset: {ds.get('name', '')} (content hash {ds.get('content_hash', '')})\n")
    buf.write(f"- Code version: {card.get('code_version') or 'unknown'}\n")
    env = card["environment"]
    buf.write(f"- TensorFlow {env['tensorflow']}, Keras {env['keras']}, Python {env['python']}\n")
    buf.write(f"- Training time: {card['training']['seconds']} s, {card['training']['epochs_run']} epochs\n\n")
    buf.write("## Test metrics\n\n")
    for k, v in card["metrics"]["test"].items():
        buf.write(f"- {k}: {v:.4f}\n" if isinstance(v, float) else f"- {k}: {v}\n")
    buf.write("\n## Hyperparameters\n\n")
    for k, v in card["hyperparameters"].items():
        buf.write(f"- {k}: {v}\n")
    return buf.getvalue()
