"""The patch recipes at the size of real datasets: the feature maps stay float16 and are never copied
whole (float32, mirrored, the normal class alone), the head sees a bounded number of maps, and the
test split is read once for the probabilities and the heatmaps."""

import numpy as np
import pytest

from apps.training.ml import patch
from apps.training.ml.config import TrainConfig, config_errors


def maps(n=10, h=3, w=4, d=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, h, w, d)).astype(np.float16)


def test_channel_stats_match_numpy_on_the_whole_set_in_chunks():
    x = maps(37)
    mean, std = patch.channel_stats(x, chunk=4)
    flat = x.reshape(-1, 5).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(0), atol=1e-5)
    np.testing.assert_allclose(std, flat.std(0) + 1e-3, atol=1e-5)


def test_map_batches_serve_every_map_plain_and_mirrored_once_per_epoch_in_float32():
    x, y = maps(10), np.arange(10) % 2
    batches = patch.MapBatches(
        x, y.astype(np.float32), batch_size=4, mirror=True, class_weight={0: 0.5, 1: 2.0}, seed=1
    )
    assert len(batches) == 5  # 20 maps in batches of 4
    seen = []
    for i in range(len(batches)):
        xb, yb, wb = batches[i]
        assert xb.dtype == np.float32 and xb.shape[1:] == (3, 4, 5)
        np.testing.assert_array_equal(wb, np.where(yb == 1, 2.0, 0.5))
        for row, label in zip(xb, yb):
            for j in range(10):
                if np.array_equal(row, x[j].astype(np.float32)):
                    seen.append(("plain", j))
                elif np.array_equal(row, x[j][::-1].astype(np.float32)):
                    seen.append(("mirror", j))
            assert label == y[seen[-1][1]]  # a map keeps its own label
    assert sorted(seen) == sorted([(kind, j) for kind in ("plain", "mirror") for j in range(10)])
    first = batches.order.copy()
    batches.on_epoch_end()
    assert not np.array_equal(first, batches.order) and sorted(first) == sorted(batches.order)  # reshuffled


def test_map_batches_without_mirror_or_weights():
    batches = patch.MapBatches(maps(6), np.zeros(6, np.float32), batch_size=4, mirror=False)
    assert len(batches) == 2 and len(batches[0]) == 2 and len(batches[1][0]) == 2


def test_rows_gather_patches_of_the_chosen_images_only():
    x = maps(4, 2, 3, 5)
    rows = patch.Rows(x, [1, 3])
    assert len(rows) == 2 * 6
    np.testing.assert_array_equal(rows[np.array([0, 7])], np.stack([x[1, 0, 0], x[3, 0, 1]]))


def test_kcenter_from_rows_equals_kcenter_from_the_copied_array():
    x, labels = maps(12, 4, 4, 6), np.array([0, 1] * 6)
    normal = x[labels == 0].reshape(-1, 6)
    for pool in (20, 10_000):  # drawn from a pool, and the whole set
        a = patch.kcenter(normal, 8, seed=3, pool=pool, dims=4)
        b = patch.kcenter(patch.Rows(x, np.flatnonzero(labels == 0)), 8, seed=3, pool=pool, dims=4)
        np.testing.assert_array_equal(a, b)


def doubler():
    """A stand-in feature extractor: images → their values doubled."""
    import keras

    inp = keras.Input((2, 2, 1))
    return keras.Model(inp, keras.layers.Rescaling(2.0)(inp))


def test_extract_fills_one_array_from_a_dataset_that_knows_its_length():
    import tensorflow as tf

    images = np.arange(10 * 2 * 2 * 1, dtype=np.float32).reshape(10, 2, 2, 1)
    ds = tf.data.Dataset.from_tensor_slices((images, np.arange(10))).batch(4)
    feats, labels = patch.extract(doubler(), ds)
    assert feats.dtype == np.float16 and feats.shape == (10, 2, 2, 1)
    np.testing.assert_array_equal(feats, images * 2)
    np.testing.assert_array_equal(labels, np.arange(10))
    unknown = ds.filter(lambda x, y: True)  # cardinality unknown: chunks joined at the end
    feats2, _ = patch.extract(doubler(), unknown)
    np.testing.assert_array_equal(feats2, feats)


def test_head_samples_bound_the_epochs_of_the_patch_classifier():
    x, y = maps(40, 3, 4, 5), np.array([0] * 30 + [1] * 10)
    cfg = TrainConfig.from_dict(
        {"architecture": "patch_mil", "epochs": 30, "head_samples": 160, "batch_size": 8, "augmentation": "light"}
    )
    lines = []
    c = patch._fit_classifier(cfg, x, y, None, None, 2, 1, {0: 0.6, 1: 2.0}, None, None, lines.append)
    assert len(c["history"]["loss"]) == 2  # 80 maps an epoch (mirrored), at most 160 in all
    assert "2 epochs of 80 maps per head instead of 30" in lines[0]
    cfg.head_samples = 0
    c = patch._fit_classifier(cfg, x, y, None, None, 2, 1, None, None, None, lines.append)
    assert len(c["history"]["loss"]) == 30


def test_head_samples_is_checked_like_every_hyperparameter():
    assert "head_samples" in config_errors({"head_samples": -1})
    assert "head_samples" in config_errors({"head_samples": 2.5})
    assert config_errors({"head_samples": 60000}) == {}


@pytest.mark.parametrize("crop", ["object", "none"])
def test_one_pass_gives_the_models_probabilities_and_a_heatmap_per_image(tmp_path, crop):
    import io

    import keras
    import tensorflow as tf
    from PIL import Image

    from apps.training.ml import backbones

    cfg = TrainConfig.from_dict(
        {
            "architecture": "patch_mil",
            "backbone": "mobilenet_v3_small",
            "image_size": 64,
            "crop": crop,
            "crop_width": 64,
            "crop_height": 32,
            "channels": 1,
        }
    )
    assert "mobilenet_v3_small" in backbones.CATALOGUE
    ext = patch.extractor(cfg, None)
    d = ext.outputs[0].shape[-1]
    head = patch.head(d, 1, top_k=2, dropout=0, mean=np.zeros(d), std=np.ones(d))
    from apps.training.ml.layers import ThresholdedBinary

    probs = ThresholdedBinary(0.0, 1, 1.0, name="probs")(head(ext.outputs[0]))
    model = keras.Model(ext.inputs[0], probs)
    view = ext.get_layer("object_crop").output if crop == "object" else ext.inputs[0]
    scores = keras.Model(head.inputs, head.get_layer("patch_scores").output)(ext.outputs[0])
    heat = keras.Model(ext.inputs[0], [probs, view, scores])
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(5, 64, 64, 1)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, np.array([0, 1, 0, 1, 1]))).batch(2)
    y, p, pngs, maps, geometries = patch.predict_with_heatmaps(heat, ds, width=48)
    np.testing.assert_array_equal(y, [0, 1, 0, 1, 1])
    np.testing.assert_allclose(p, np.asarray(model(images)), atol=1e-5)
    assert len(pngs) == 5
    with Image.open(io.BytesIO(pngs[0])) as im:
        assert im.size[0] == 48 and im.mode == "RGB"
    # Each map on its own 0..1 scale, and where it lies on the photograph: the crop's transform.
    assert len(maps) == 5 and all(m.min() >= 0 and m.max() <= 1 for m in maps)
    if crop == "object":
        assert all(len(g["coeffs"]) == 8 and g["input"] == 64 for g in geometries)
    else:
        assert geometries == [None] * 5


def test_map_batches_standardize_what_they_serve():
    x = maps(6)
    shift, scale = np.linspace(-1, 1, 5).astype(np.float32), np.linspace(0.5, 2, 5).astype(np.float32)
    batches = patch.MapBatches(x, np.zeros(6, np.float32), batch_size=6, mirror=False, shift=shift, scale=scale)
    xb, _ = batches[0]
    order = np.sort(batches.order[:6])
    np.testing.assert_allclose(xb, (x[order].astype(np.float32) - shift) * scale, rtol=1e-6)


def test_the_classifier_trained_on_standardized_maps_scores_raw_maps():
    """The head is fitted without its standardizing layer; the model it returns takes raw features."""
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(48, 4, 6, 8)) * 3 + 10).astype(np.float16)  # far from standardized
    y = np.array([0, 1] * 24)
    x[y == 1, 1, 2, 0] += 25  # a defect: one bright patch in channel 0
    cfg = TrainConfig.from_dict(
        {
            "architecture": "patch_mil",
            "epochs": 40,
            "batch_size": 8,
            "top_k": 1,
            "dropout": 0.0,
            "learning_rate": 1e-2,
            "augmentation": "none",
        }
    )
    c = patch._fit_classifier(
        cfg, x[:32], y[:32], x[32:].astype(np.float32), y[32:], 2, 1, None, None, None, lambda _: None
    )
    scores = np.asarray(c["score_model"](x[32:].astype(np.float32)))[:, 0]
    # the returned model, on raw maps, makes the decisions validation measured on standardized ones
    assert (((scores >= c["threshold"]) == (y[32:] == 1)).mean()) == c["val_accuracy"]
    from apps.training.ml.evaluate import binary_curves

    assert binary_curves(y[32:] == 1, scores)["roc_auc"] == pytest.approx(c["val_auc"], abs=1e-6)
    assert c["val_auc"] > 0.5


def test_an_ensemble_of_heads_averages_their_scores_and_shares_the_maps_budget(tmp_path):
    """Each head from its own seed; the model scores raw maps with their average (saved and loaded
    safely like one head); the budget of maps is the ensemble's; the epochs follow each other."""
    import keras

    rng = np.random.default_rng(1)
    x = (rng.normal(size=(40, 4, 6, 8)) * 3 + 10).astype(np.float16)
    y = np.array([0, 1] * 20)
    x[y == 1, 1, 2, 0] += 25
    cfg = TrainConfig.from_dict(
        {
            "architecture": "patch_mil",
            "epochs": 10,
            "batch_size": 8,
            "top_k": 1,
            "dropout": 0.0,
            "augmentation": "none",
            "head_ensemble": 3,
            "head_samples": 180,
        }
    )
    seen, lines = [], []
    c = patch._fit_classifier(
        cfg,
        x[:30],
        y[:30],
        x[30:].astype(np.float32),
        y[30:],
        2,
        1,
        None,
        lambda epoch, m, s: seen.append(epoch),
        None,
        lines.append,
    )
    assert seen == list(range(1, 7))  # 3 heads × 2 epochs (180 maps / 3 heads / 30 maps an epoch)
    assert len(c["history"]["loss"]) == 6 and "3 heads averaged" in c["title"]
    members = [layer for layer in c["score_model"].layers if layer.name.startswith("patch_head_")]
    assert len(members) == 3
    raw = x[30:].astype(np.float32)
    each = [np.asarray(m_(raw)) for m_ in members]
    assert not np.allclose(each[0], each[1])  # their own seeds
    np.testing.assert_allclose(np.asarray(c["score_model"](raw)), np.mean(each, axis=0), atol=1e-5)
    wrapper = keras.Model(c["score_model"].inputs, c["score_model"].outputs)
    wrapper.save(tmp_path / "ensemble.keras")
    again = keras.saving.load_model(tmp_path / "ensemble.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(np.asarray(again(raw)), np.asarray(c["score_model"](raw)), atol=1e-5)
    scores = np.asarray(c["score_model"](raw))[:, 0]
    assert (((scores >= c["threshold"]) == (y[30:] == 1)).mean()) == c["val_accuracy"]
