"""apps.training.ml on tiny images: pipeline, builders, fit callbacks, evaluation maths, export.

These tests import no Django model: the ml package must run without Django.
"""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from apps.training.ml import builders, data, evaluate
from apps.training.ml.config import TrainConfig, config_errors
from apps.training.ml.run import SplitData, train_and_evaluate

ROOT = Path(__file__).resolve().parents[2]


def tiny_images(tmp_path, n=16, size=32):
    """Half dark, half bright noise images: class 0 dark, class 1 bright (learnable in 1-2 epochs)."""
    paths, labels = [], []
    for i in range(n):
        label = i % 2
        rng = np.random.default_rng(i)
        arr = rng.integers(0, 80, (size, size), dtype=np.uint8) + (150 if label else 0)
        from PIL import Image

        p = tmp_path / f"img{i}.png"
        Image.fromarray(arr.astype(np.uint8), mode="L").save(p)
        paths.append(str(p))
        labels.append(label)
    return paths, labels


def test_ml_package_has_no_django_import():
    import re

    src = "\n".join(p.read_text() for p in (ROOT / "apps/training/ml").glob("*.py"))
    assert not re.search(r"^\s*(from|import)\s+django", src, re.M)
    # and it imports in a fresh interpreter with no settings configured
    code = (
        "import sys; import apps.training.ml.run, apps.training.ml.data, apps.training.ml.builders; "
        "assert 'django.conf' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={"PATH": "/usr/bin"})


def test_config_errors_name_the_field():
    assert config_errors(TrainConfig().to_dict()) == {}
    errors = config_errors(
        {
            "learning_rate": 5,
            "epochs": 0,
            "batch_size": 2.5,
            "architecture": "resnet9000",
            "channels": 2,
            "bogus": 1,
            "mixed_precision": True,
        }
    )
    assert "learning_rate must be between" in errors["learning_rate"]
    assert "epochs must be between 1" in errors["epochs"]
    assert "whole number" in errors["batch_size"]
    assert "architecture must be one of" in errors["architecture"]
    assert "channels" in errors and "bogus" in errors
    assert "GPU" in errors["mixed_precision"]


def test_pipeline_reads_decodes_resizes_from_paths_and_reader(tmp_path):
    paths, labels = tiny_images(tmp_path, n=6, size=40)
    ds = data.make_dataset(paths, labels, image_size=24, channels=1, batch_size=4)
    batches = list(ds)
    assert [tuple(x.shape) for x, _ in batches] == [(4, 24, 24, 1), (2, 24, 24, 1)]
    assert batches[0][1].numpy().tolist() == labels[:4]
    calls = []

    def reader(key):
        calls.append(key)
        return Path(key).read_bytes()

    ds2 = data.make_dataset(paths, labels, image_size=24, channels=3, batch_size=6, reader=reader)
    for _ in range(2):  # the second pass is served from the cache: storage is read once
        ((x, y),) = list(ds2)
    assert x.shape == (6, 24, 24, 3) and float(x.numpy().max()) <= 255.0
    assert sorted(calls) == sorted(paths)
    np.testing.assert_allclose(batches[0][0].numpy()[0, ..., 0], x.numpy()[0, ..., 0], atol=1.0)


def test_augmentation_changes_training_batches_only(tmp_path):
    paths, labels = tiny_images(tmp_path, n=4)
    train = data.make_dataset(
        paths, labels, image_size=32, channels=1, batch_size=4, augment="strong", shuffle=True, seed=1
    )
    plain = data.make_dataset(paths, labels, image_size=32, channels=1, batch_size=4)
    ((xt, yt),) = list(train)
    ((xp, yp),) = list(plain)
    # flips/rotations/contrast move pixels: the augmented batch is not the plain one, even up to order
    assert not np.allclose(np.sort(xt.numpy().ravel()), np.sort(xp.numpy().ravel()), atol=1e-3)
    assert sorted(yt.numpy().tolist()) == sorted(yp.numpy().tolist())
    assert data.augmenter("none") is None


def test_class_weights_balance_rare_classes():
    w = data.class_weights([0, 0, 0, 1], 2)
    assert w[1] == pytest.approx(2.0) and w[0] == pytest.approx(4 / 6)


@pytest.mark.parametrize("arch", ["tiny_cnn", "small_cnn", "medium_cnn"])
def test_builders_make_models_of_growing_size(arch):
    cfg = TrainConfig(architecture=arch, image_size=32, channels=1)
    model = builders.build_model(cfg, 3)
    assert model.output_shape == (None, 3)
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"
    sizes = {"tiny_cnn": (1e3, 2e4), "small_cnn": (1e5, 4e5), "medium_cnn": (1e6, 3e6)}[arch]
    assert sizes[0] < model.count_params() < sizes[1]


def test_mixed_precision_keeps_float32_output_and_restores_policy():
    import keras

    from apps.training.ml.fit import precision_policy

    with precision_policy(True):
        model = builders.build_model(TrainConfig(architecture="tiny_cnn", image_size=32), 2)
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
        assert model.layers[1].dtype_policy.compute_dtype == "float16"
        assert model.output.dtype == "float32"
        assert "LossScaleOptimizer" in type(model.optimizer).__name__
    assert keras.mixed_precision.global_policy().name == "float32"


def test_finetune_loads_with_safe_mode_and_replaces_the_head(tmp_path):
    base = builders.build_model(TrainConfig(architecture="tiny_cnn", image_size=32), 5)
    path = tmp_path / "base.keras"
    base.save(path)
    assert builders.base_model_input(path) == (32, 32, 1)
    model = builders.build_model(
        TrainConfig(architecture="finetune", image_size=32, freeze_base=True), 2, base_path=path
    )
    assert model.output_shape == (None, 2)
    assert not model.get_layer("base").trainable
    with pytest.raises(builders.BaseModelError, match="inputs of shape"):
        builders.build_model(TrainConfig(architecture="finetune", image_size=48), 2, base_path=path)
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(builders.BaseModelError, match="loads safely"):
        builders.load_base_model(bad)


def test_finetune_refuses_a_model_with_a_lambda_layer(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Lambda(lambda t: t * 2)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(builders.BaseModelError, match="safely"):
        builders.load_base_model(path)


def test_metrics_maths_on_known_predictions():
    y = np.array([0, 0, 0, 1, 1, 2])
    probs = np.eye(3)[[0, 0, 1, 1, 0, 2]]
    m = evaluate.classification_metrics(y, probs, ["a", "b", "c"])
    assert m["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx(np.mean([2 / 3, 0.5, 1.0]))
    assert "curves" not in m


def test_binary_curves_perfect_and_random():
    c = evaluate.binary_curves([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert c["roc_auc"] == pytest.approx(1.0) and c["average_precision"] == pytest.approx(1.0)
    c = evaluate.binary_curves([1, 0, 0, 1], [0.9, 0.8, 0.2, 0.1])
    assert c["roc_auc"] == pytest.approx(0.5)
    m = evaluate.classification_metrics(
        np.array([0, 0, 0, 1]), np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6]]), ["good", "defect"]
    )
    assert m["curves"]["positive_class"] == "defect" and m["roc_auc"] == pytest.approx(1.0)


def test_train_and_evaluate_end_to_end(tmp_path):
    paths, labels = tiny_images(tmp_path, n=16)
    splits = {
        "train": SplitData(paths[:8], labels[:8]),
        "val": SplitData(paths[8:12], labels[8:12]),
        "test": SplitData(paths[12:], labels[12:]),
    }
    epochs, batches, logs = [], [], []
    cfg = TrainConfig(
        architecture="tiny_cnn", image_size=32, epochs=2, batch_size=4, augmentation="light", early_stopping=False
    )
    res = train_and_evaluate(
        cfg,
        splits,
        ["dark", "bright"],
        workdir=tmp_path / "out",
        on_epoch=lambda e, m, s: epochs.append((e, m)),
        on_batch=lambda e, b: batches.append(e),
        log=logs.append,
        card_info={"name": "t", "dataset": {"content_hash": "abc"}},
    )
    assert [e for e, _ in epochs] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(epochs[0][1])
    assert res.metrics["n"] == 4 and len(res.predictions) == 4
    assert set(res.artifacts) == {"keras", "savedmodel", "model_card"}
    with zipfile.ZipFile(res.artifacts["savedmodel"]) as zf:
        assert "saved_model.pb" in zf.namelist()
    card = json.loads(Path(res.artifacts["model_card"]).read_text())
    assert card["dataset"]["content_hash"] == "abc" and card["hyperparameters"]["epochs"] == 2
    assert card["environment"]["tensorflow"] and card["seeds"] == {"training": cfg.seed}
    import keras

    reloaded = keras.saving.load_model(res.artifacts["keras"], safe_mode=True)
    assert reloaded.output_shape == (None, 2)


def test_cancel_stops_within_a_batch(tmp_path):
    paths, labels = tiny_images(tmp_path, n=16)
    splits = {
        "train": SplitData(paths, labels),
        "val": SplitData(paths[:4], labels[:4]),
        "test": SplitData(paths[:4], labels[:4]),
    }
    seen = []
    cfg = TrainConfig(architecture="tiny_cnn", image_size=32, epochs=50, batch_size=2, early_stopping=False)

    def stop():
        seen.append(1)
        return True

    from apps.training.ml import fit as fitmod

    res = train_and_evaluate(cfg, splits, ["a", "b"], workdir=tmp_path / "out", should_stop=stop, log=lambda m: None)
    assert res.cancelled and res.epochs_run <= 1 and res.artifacts == {}
    assert fitmod.PortalCallback  # the callback checked between batches


def test_light_augmentation_is_lossless(tmp_path):
    """Every augmented image is exactly one of the 8 rotations/reflections of an original."""
    paths, labels = tiny_images(tmp_path, n=6)
    plain = np.concatenate(
        [x.numpy() for x, _ in data.make_dataset(paths, labels, image_size=32, channels=1, batch_size=6)]
    )
    variants = []
    for img in plain:
        for k in range(4):
            r = np.rot90(img, k)
            variants += [r, np.fliplr(r)]
    moved = 0
    for _ in range(3):
        for x, _ in data.make_dataset(
            paths, labels, image_size=32, channels=1, batch_size=6, augment="light", shuffle=True, seed=3
        ):
            for img in x.numpy():
                assert any(np.array_equal(img, v) for v in variants)
                moved += not any(np.array_equal(img, p) for p in plain)
    assert moved > 0
