"""The automatic recipe search: which candidate a run keeps and why, the threshold a small validation
split may move, the classifier and the anomaly detector together, and the from-scratch candidate
trained in what is left of the stated time budget."""

import numpy as np
import pytest

from apps.training.ml import patch, search
from apps.training.ml.config import TrainConfig, config_errors


def cand(kind, acc, auc, title=None):
    return {"kind": kind, "title": title or f"the {kind}", "val_accuracy": acc, "val_auc": auc}


def test_a_candidate_clearly_ahead_on_validation_wins_and_the_reason_names_every_candidate():
    cands = [cand("classifier", 0.9, 0.95), cand("anomaly", 0.99, 0.9), cand("scratch", 0.8, 0.9)]
    winner, why = search.choose(cands, 200)  # 0.09 apart; one standard error of the difference is 0.022
    assert winner["kind"] == "anomaly"
    assert why.startswith("the anomaly had the best validation accuracy")
    assert "the classifier validation accuracy 0.9000" in why and "the scratch" in why


def test_one_image_ahead_on_72_is_within_one_standard_error_and_the_benchmarks_first_is_kept():
    """Seed 0 of the screw benchmark: both together 0.9861 on validation (0.9444 on test), the
    classifier 0.9722 (0.9722 on test)."""
    cands = [cand("classifier", 70 / 72, 0.9969), cand("anomaly", 60 / 72, 0.88), cand("combined", 71 / 72, 0.998)]
    winner, why = search.choose(cands, 72)
    assert winner["kind"] == "classifier"
    assert "within one standard error (0.0238 on 72 validation images)" in why and "(0.9861, the combined)" in why
    assert search.standard_error(71 / 72, 70 / 72, 72) == pytest.approx(0.02378, abs=1e-4)
    # on a larger validation split the same gap is more than one standard error
    assert search.choose(cands, 2000)[0]["kind"] == "combined"


def test_equal_accuracy_goes_to_the_benchmarks_order_whatever_the_auc():
    winner, why = search.choose([cand("anomaly", 0.9, 0.97), cand("classifier", 0.9, 0.91)], 72)
    assert winner["kind"] == "classifier" and "within one standard error" in why


def test_a_full_tie_goes_to_the_candidate_the_benchmark_ranks_first_and_says_it_was_a_tie():
    """Two validation images tie everything; the reason must not claim a higher accuracy."""
    cands = [cand("anomaly", 1.0, 1.0), cand("classifier", 1.0, 1.0), cand("scratch", 1.0, 1.0)]
    winner, why = search.choose(cands, 2)
    assert winner["kind"] == "classifier"
    assert "tied with" in why and "higher validation" not in why and "classifier > combined > anomaly > scratch" in why


def test_one_candidate_is_the_only_one():
    winner, why = search.choose([cand("anomaly", None, None)])
    assert winner["kind"] == "anomaly" and "only candidate" in why and "no validation figures" in why


def test_the_summary_keeps_the_budget_and_what_was_skipped():
    c = cand("classifier", 0.9, 0.9)
    out = search.summary([c], c, "why", budget_s=900, spent_s=12.34, skipped=["x"])
    assert out["winner"] == "classifier" and out["budget_s"] == 900 and out["spent_s"] == 12.3
    assert out["skipped"] == ["x"] and out["candidates"][0]["val_accuracy"] == 0.9


def test_a_threshold_stays_at_its_prior_where_validation_has_no_reason_to_move_it():
    scores = np.array([-2.0, -1.0, 1.5, 3.0])
    positive = np.array([False, False, True, True])
    assert patch.best_threshold(scores, positive, prior=0.0) == 0.0
    assert patch.best_threshold(scores, positive) == pytest.approx(0.25)  # the middle without a prior
    # where the prior misclassifies a validation image the cut moves to where validation is best
    shifted = np.array([0.5, 1.0, 1.5, 3.0])
    cut = patch.best_threshold(shifted, positive, prior=0.0)
    assert 1.0 < cut < 1.5
    assert patch.best_threshold(np.array([2.0]), np.array([True]), prior=0.0) == 0.0


def test_the_classifier_and_the_anomaly_detector_together_sum_their_scaled_scores(tmp_path):
    """The combined candidate's model gives exactly the validation sums it was judged on, from stock
    layers that save and load in safe mode."""
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3, 4, 5)).astype(np.float32)
    positive = np.array([False] * 6 + [True] * 6)
    inp = keras.Input((None, None, 5))
    pooled = keras.layers.GlobalAveragePooling2D()(inp)
    a_model = keras.Model(inp, keras.layers.Dense(1, name="a")(pooled))
    b_model = keras.Model(inp, keras.layers.Dense(1, name="b")(pooled))
    maps_a = keras.Model(inp, keras.layers.Conv2D(1, 1, name="ma")(inp))
    maps_b = keras.Model(inp, keras.layers.Conv2D(1, 1, name="mb")(inp))
    sa, sb = np.asarray(a_model(x))[:, 0], np.asarray(b_model(x))[:, 0]
    ca = {"score_model": a_model, "map_model": maps_a, "threshold": 0.1, "val_scores": sa, "history": {}}
    ca.update(best_epoch=3, params=7, tta=False)
    cb = {"score_model": b_model, "map_model": maps_b, "threshold": -0.2, "val_scores": sb, "params": 5}
    c = patch._combined(ca, cb, positive)
    expected = (sa - 0.1) / np.std(sa[~positive]) + (sb + 0.2) / np.std(sb[~positive])
    np.testing.assert_allclose(np.asarray(c["score_model"](x))[:, 0], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c["val_scores"], expected, rtol=1e-6)
    assert c["kind"] == "combined" and c["params"] == 12
    assert c["val_accuracy"] == ((expected >= c["threshold"]) == positive).mean()
    assert np.asarray(c["map_model"](x)).shape == (12, 3, 4, 1)
    c["score_model"].save(tmp_path / "combined.keras")
    again = keras.saving.load_model(tmp_path / "combined.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(np.asarray(again(x))[:, 0], expected, rtol=1e-4, atol=1e-5)


def test_the_search_budget_is_a_checked_hyperparameter_with_a_stated_default():
    assert TrainConfig().search_budget_s == 600
    assert "search_budget_s" in config_errors({"search_budget_s": -1})
    assert "search_budget_s" in config_errors({"search_budget_s": 1.5})
    assert config_errors({"search_budget_s": 0}) == {}
