"""Where a classifier looked (Grad-CAM) and how well that points at the labelers' boxes."""

import numpy as np
import pytest

from apps.training.ml.localize import localization_scores


def test_pointing_game_and_localization_iou_read_the_map_over_the_whole_photograph():
    m = np.zeros((4, 4), np.float32)
    m[0, 3] = 1.0  # the peak: the top-right cell
    inside = [{"x": 600, "y": 0, "w": 200, "h": 150}]  # the top-right quarter of an 800×600 photo, about
    elsewhere = [{"x": 0, "y": 450, "w": 100, "h": 100}]
    s = localization_scores([m, m, m], [inside, elsewhere, []], [(800, 600)] * 3)
    assert s["images"] == 2 and s["pointing_game"] == 0.5  # the image without boxes is not scored
    assert 0 < s["localization_iou"] < 1
    whole = np.ones((4, 4), np.float32)
    full = localization_scores([whole], [[{"x": 0, "y": 0, "w": 800, "h": 600}]], [(800, 600)])
    assert full["localization_iou"] == 1.0 and full["pointing_game"] == 1.0
    assert localization_scores([m], [[]], [(800, 600)]) is None


def test_a_map_over_an_object_crop_is_carried_to_the_photograph_through_the_crop():
    """A patch recipe's map covers the crop (here: the crop is the right half of a 100×100 model input
    of a 400×200 photograph, i.e. x' = 0.5·x + 50 on a 100×100 crop)."""
    from apps.training.ml.localize import to_photo

    geometry = {"coeffs": [0.5, 0.0, 50.0, 0.0, 1.0, 0.0, 0.0, 0.0], "crop": (100, 100), "input": 100}
    assert to_photo(0.0, 0.0, geometry, (400, 200)) == (200.0, 0.0)
    assert to_photo(1.0, 1.0, geometry, (400, 200)) == (400.0, 200.0)
    m = np.zeros((2, 2), np.float32)
    m[1, 0] = 1.0  # peak: the crop's bottom-left quarter → photograph x 200..300, y 100..200
    hit = [{"x": 210, "y": 120, "w": 80, "h": 70}]
    s = localization_scores([m, m], [hit, [{"x": 0, "y": 0, "w": 150, "h": 200}]], [(400, 200)] * 2, [geometry] * 2)
    assert s["pointing_game"] == 0.5 and s["images"] == 2


@pytest.mark.parametrize("arch", ["tiny_cnn", "medium_cnn"])
def test_gradcam_maps_every_image_from_the_last_image_features(arch):
    import tensorflow as tf

    from apps.training.ml.builders import build_model
    from apps.training.ml.config import TrainConfig
    from apps.training.ml.explain import feature_tensor, predict_with_gradcam

    cfg = TrainConfig(architecture=arch, image_size=32, channels=1, epochs=1)
    model = build_model(cfg, 2)
    assert len(feature_tensor(model).shape) == 4
    x = np.random.default_rng(0).uniform(0, 255, (5, 32, 32, 1)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, np.array([0, 1, 0, 1, 1]))).batch(2)
    y, probs, pngs, maps = predict_with_gradcam(model, ds, width=64)
    assert list(y) == [0, 1, 0, 1, 1] and probs.shape == (5, 2) and len(pngs) == len(maps) == 5
    assert np.allclose(probs, np.asarray(model(x)), atol=1e-5)  # the same answers as a plain pass
    assert all(m.ndim == 2 and 0 <= m.min() and m.max() <= 1.0 + 1e-6 for m in maps)
    assert pngs[0].startswith(b"\x89PNG")


def test_a_finetuned_upload_is_explained_through_its_nested_base(tmp_path):
    import keras
    import tensorflow as tf

    from apps.training.ml.builders import build_model
    from apps.training.ml.config import TrainConfig
    from apps.training.ml.explain import NotExplainable, feature_tensor, predict_with_gradcam

    inp = keras.Input((32, 32, 3))
    y = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inp)
    y = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(y)
    out = keras.layers.Dense(3)(keras.layers.Flatten()(y))
    path = tmp_path / "upload.keras"
    keras.Model(inp, out).save(path)
    cfg = TrainConfig(architecture="finetune", image_size=32, channels=3, epochs=1)
    model = build_model(cfg, 2, base_path=str(path))
    with pytest.raises(NotExplainable):  # the upload ends in a vector: its image features are inside it
        feature_tensor(model)
    x = np.zeros((2, 32, 32, 3), np.float32)
    _, _, pngs, maps = predict_with_gradcam(model, tf.data.Dataset.from_tensor_slices((x, [0, 1])).batch(2))
    assert len(pngs) == 2 and maps[0].shape == (32, 32)


@pytest.mark.django_db
def test_a_classifier_run_on_real_photographs_draws_gradcam_and_scores_it_against_the_boxes(
    screws, project, people, client
):
    """Real TensorFlow training on real screw photographs; the test images of the defect class carry
    boxes drawn here (around the middle of the photograph, where the screw lies)."""
    from apps.datasets.models import VersionItem
    from apps.training import services
    from apps.training.ml.evaluate import metric_lookup
    from tests.factories import make_item, make_version, mark_profiled

    root, rows = screws
    good = [r for r in rows if r["label"] == "good"][:6]
    bad = [r for r in rows if r["label"] != "good"][:6]
    entries = []
    for i, r in enumerate(good + bad):
        item = make_item(project, (root / r["path"]).read_bytes(), name=f"{r['label']}-{i}.png")
        split = ("train", "train", "train", "val", "test", "test")[i % 6]
        entries.append((item, split, "good" if r["label"] == "good" else "defect"))
    version = make_version(project, entries)
    mark_profiled(version)
    boxed = [it for it, split, label in entries if split == "test" and label == "defect"]
    for it in boxed:
        box = {
            "x": it.width * 0.25,
            "y": it.height * 0.25,
            "w": it.width * 0.5,
            "h": it.height * 0.5,
            "class": "defect",
        }
        VersionItem.objects.filter(version=version, item=it).update(regions=[box])
    run = services.training_run_create(
        project=project,
        user=people["ds"],
        dataset_version=version,
        config={"architecture": "tiny_cnn", "image_size": 64, "channels": 1, "epochs": 1, "batch_size": 4},
    )
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.log
    assert len(run.predictions) == 4 and all(p.get("heatmap") for p in run.predictions)  # every test image
    loc = run.test_metrics["localization"]
    assert loc["images"] == len(boxed) == 2 and 0 <= loc["pointing_game"] <= 1 and 0 <= loc["localization_iou"] <= 1
    assert metric_lookup(run.test_metrics, "pointing_game") == loc["pointing_game"]  # a gate target can name it
    assert "localization on 2 boxed test images" in run.log

    client.force_login(people["labeler"])
    page = client.get(f"/p/{project.slug}/training/runs/{run.pk}/evaluation/").content.decode()
    assert 'id="localization"' in page and 'id="heat-toggle"' in page and "Grad-CAM" in page
    # The confusion-matrix drill-down brings each image's heatmap (the gallery's toggle shows it).
    p, classes = run.predictions[0], run.test_metrics["classes"]
    name = lambda v: classes[v] if isinstance(v, int) else v  # noqa: E731
    cell = client.get(
        f"/api/v1/projects/{project.slug}/training/runs/{run.pk}/misclassified/",
        {"true": name(p["true"]), "pred": name(p["pred"]), "heatmaps": "1"},
    ).json()
    assert cell and all(r["heatmap_url"].startswith("data:image/png;base64,") for r in cell)
    compare = client.get(f"/p/{project.slug}/training/compare/?runs={run.pk}").content.decode()
    assert "pointing game" in compare


def test_a_patch_model_shows_its_own_patch_score_map():
    """The anomaly detector and the patch classifier pool a patch-score map with TopKMean: explaining
    one shows that map (no gradient), scaled to 0..1 per image, hottest where the scores are."""
    import keras

    from apps.training.ml.explain import explain_fn, heatmap_pngs
    from apps.training.ml.layers import TopKMean

    inputs = keras.Input((16, 16, 1), name="image")
    scores = keras.layers.AveragePooling2D(4)(inputs)  # a 4×4 "patch score" map: the mean brightness
    model = keras.Model(inputs, keras.layers.Activation("sigmoid")(TopKMean(k=2)(scores)))
    x = np.zeros((1, 16, 16, 1), np.float32)
    x[0, 12:, 0:4] = 255.0  # one bright patch: bottom left
    m = explain_fn(model)(x)[0]
    assert m.shape == (4, 4) and np.unravel_index(m.argmax(), m.shape) == (3, 0) and m.max() == pytest.approx(1.0)
    assert heatmap_pngs(x, [m], width=32)[0].startswith(b"\x89PNG")
