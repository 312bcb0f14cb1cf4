import pytest

from apps.core.storage import blob_put
from apps.datasets.models import Item, VersionItem
from apps.labeling.models import LabelTask
from apps.monitoring import selectors, services
from apps.monitoring.models import Alert, LiveSample, Retrain, RuleKind
from apps.profiling.services import profile_run_execute
from apps.training.models import TrainingRun
from tests.factories import approve_scope, label_classes, png_bytes, set_label

from .conftest import log_predictions


def _kept_predictions(mv, n_low=10, n_high=40):
    rows = []
    for i in range(n_low + n_high):
        blob = blob_put(png_bytes(size=(48, 48), seed=5000 + i), ext="png", content_type="image/png")
        low = i < n_low
        rows.append(
            {
                "input_blob": blob,
                "confidence": 0.3 + 0.02 * i if low else 0.97,
                "predicted_class": "good" if i % 2 else "defect",
            }
        )
    return log_predictions(mv, rows)


def test_low_confidence_inputs_first_then_a_random_share_go_to_labeling(project, mv):
    logs = _kept_predictions(mv)
    made = services.live_sample_collect(project=project, low_limit=5, random_share=0.1, seed=3)
    low = [s for s in made if s.reason == "low_confidence"]
    assert [s.prediction_id for s in low] == [p.pk for p in logs[:5]]  # the five least confident, in order
    randoms = [s for s in made if s.reason == "random"]
    assert 1 <= len(randoms) <= 12  # ~10% of the 45 others
    assert all(s.prediction.confidence >= 0.6 for s in randoms)
    for s in made:
        assert s.item.source == "prediction" and s.item.sha256 == s.prediction.input_blob.sha256
        task = LabelTask.objects.get(item=s.item)
        assert task.state == "open" and task.priority > 0 and "Production input" in task.reason
    # later passes never sample a prediction twice, and the random share does not grow with them
    again = services.live_sample_collect(project=project, low_limit=50, random_share=0.1, seed=3)
    assert len(again) == 5 and {s.reason for s in again} == {"low_confidence"}
    assert not {s.prediction_id for s in again} & {s.prediction_id for s in made}
    assert services.live_sample_collect(project=project, low_limit=50, random_share=0.1, seed=3) == []
    assert LiveSample.objects.count() == Item.objects.filter(source="prediction").count() == len(made) + 5


def _label_samples(project, wrong_share):
    classes = {c.name: c for c in label_classes(project)}
    samples = list(LiveSample.objects.filter(project=project).order_by("id"))
    n_wrong = int(len(samples) * wrong_share)
    for i, s in enumerate(samples):
        truth = s.predicted_class if i >= n_wrong else ("good" if s.predicted_class == "defect" else "defect")
        set_label(s.item, classes[truth])
    return samples


def test_live_accuracy_is_scored_against_labels_and_alerts_under_target(project, people, mv):
    _kept_predictions(mv)
    services.live_sample_collect(project=project, low_limit=20, random_share=0.25, seed=1)
    samples = _label_samples(project, wrong_share=0.3)
    scores = selectors.live_scores(project)
    assert scores["overall"]["n"] == len(samples) == scores["sampled"]
    assert scores["overall"]["accuracy"] == pytest.approx(1 - int(len(samples) * 0.3) / len(samples))
    assert 0 < scores["overall"]["precision"] < 1 and 0 < scores["overall"]["recall"] < 1
    services.alert_rule_create(
        project=project,
        user=people["pm"],
        data={"name": "Live accuracy", "kind": RuleKind.LIVE_ACCURACY, "threshold": 0.9, "params": {"min_n": 10}},
    )
    [alert] = services.rules_evaluate(project=project)
    assert alert.value < 0.9 and "Live accuracy" in alert.title


def test_a_rule_starts_retraining_on_a_version_with_the_labeled_production_images(project, people, mv):
    _kept_predictions(mv, n_low=12, n_high=20)
    made = services.live_sample_collect(project=project, low_limit=12, random_share=0.5, seed=2)
    _label_samples(project, wrong_share=0.5)
    services.alert_rule_create(
        project=project,
        user=people["ds"],
        data={
            "name": "Live accuracy",
            "kind": RuleKind.LIVE_ACCURACY,
            "threshold": 0.9,
            "params": {"min_n": 5},
            "retrain": True,
        },
    )
    [alert] = services.rules_evaluate(project=project)
    retrain = Retrain.objects.get(alert=alert)
    assert retrain.status == "profiling" and retrain.base_version == mv
    in_version = VersionItem.objects.filter(version=retrain.dataset_version, item__source="prediction").count()
    assert in_version == len(made)
    # not before the new version's profile (the data-quality gate) succeeded
    assert services.retrain_advance(retrain=retrain).status == "profiling"
    profile_run_execute(run_id=retrain.profile_run_id)
    retrain = services.retrain_advance(retrain=retrain)
    assert retrain.status == "launched", retrain.error
    run = TrainingRun.objects.get(pk=retrain.run_id)
    assert run.dataset_version == retrain.dataset_version and run.status == "queued"
    assert run.config == mv.run.config  # the production model's recipe, a normal run: registering stays manual
    assert {"opened", "retrain"} <= set(alert.events.values_list("kind", flat=True))
    assert Alert.objects.get(pk=alert.pk).status == "firing"


def test_live_accuracy_is_charted_per_day_against_the_project_targets(project, mv):
    import json

    from apps.monitoring.views import dashboard_context

    approve_scope(
        project,
        [
            {"metric": "accuracy", "comparator": ">=", "target": 0.95},
            {"metric": "recall", "comparator": ">=", "target": 0.9},
        ],
    )
    _kept_predictions(mv, n_low=6, n_high=0)
    services.live_sample_collect(project=project, random_share=0)
    _label_samples(project, wrong_share=0.5)
    fig = json.loads(dashboard_context(project, "24h")["figures"]["live"])
    assert [t["name"] for t in fig["data"]] == ["accuracy", "precision", "recall"]
    assert fig["data"][0]["y"] == [0.5]
    assert sorted(s["y0"] for s in fig["layout"]["shapes"]) == [0.9, 0.95]
