"""Drift is detected on purpose: real screw photographs, darkened or blurred, against the profile of
the training version; undisturbed screws from the same source do not raise it."""

import csv
import functools
import io

import pytest
from PIL import Image, ImageEnhance, ImageFilter

from apps.monitoring import services
from apps.monitoring.models import Alert, DriftReport, RuleKind
from apps.profiling import imagestats
from apps.profiling.services import profile_run_execute, profile_run_start
from tests.conftest import SCREWS
from tests.factories import label_classes, make_item, make_version

from .conftest import log_predictions, served_version

N = 30


def _good_train_rows():
    with open(SCREWS / "manifest.csv") as fh:
        return [r for r in csv.DictReader(fh) if r["label"] == "good" and r["source_split"] == "train"]


TRANSFORMS = {
    "none": None,
    "dark": lambda im: ImageEnhance.Brightness(im).enhance(0.5),
    "blur": lambda im: im.filter(ImageFilter.GaussianBlur(3)),
}


@functools.cache
def production_stats(kind):
    """The statistics serving would log for production photos (other screws than the training ones)."""
    out = []
    for row in _good_train_rows()[5::10][:N]:
        with Image.open(SCREWS / row["path"]) as im:
            im.load()
            if TRANSFORMS[kind]:
                im = TRANSFORMS[kind](im)
            buf = io.BytesIO()
            im.save(buf, format="PNG")
        s = imagestats.stats_from_bytes(buf.getvalue())
        out.append({k: s[k] for k in imagestats.NUMERIC_STATS})
    return out


def profiled_training_version(project):
    label_classes(project)
    entries = []
    for i, row in enumerate(_good_train_rows()[0::10][:N]):
        item = make_item(project, (SCREWS / row["path"]).read_bytes(), name=row["path"])
        entries.append((item, "train" if i < N - 4 else "test", "good" if i % 2 or i < N - 4 else "defect"))
    version = make_version(project, entries)
    run = profile_run_start(version=version)
    profile_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return version


def _rule(project, people):
    return services.alert_rule_create(
        project=project,
        user=people["ds"],
        data={"name": "Input drift", "kind": RuleKind.INPUT_DRIFT, "threshold": 0.25},
    )


@pytest.mark.parametrize("kind", ["dark", "blur"])
def test_drift_alert_fires_on_disturbed_screws_and_not_on_screws_like_training(screws, project, people, kind):
    version = profiled_training_version(project)
    rule = _rule(project, people)
    ks_rule = services.alert_rule_create(
        project=project,
        user=people["ds"],
        data={"name": "Input drift KS", "kind": RuleKind.INPUT_DRIFT_KS, "threshold": 0.3},
    )

    like_training = served_version(project, version)
    log_predictions(like_training, [{"input_stats": s} for s in production_stats("none")])
    assert services.rules_evaluate(project=project) == []
    report = DriftReport.objects.get(model_version=like_training)
    assert report.n == N and report.max_psi < 0.25 and report.max_ks < 0.3
    assert set(report.stats) >= {"brightness", "contrast", "sharpness", "entropy"}

    disturbed = served_version(project, version, stage="staging")  # e.g. a canary
    log_predictions(disturbed, [{"input_stats": s} for s in production_stats(kind)])
    opened = services.rules_evaluate(project=project)
    assert {a.rule_id for a in opened} == {rule.pk, ks_rule.pk}
    alert = Alert.objects.get(rule=rule)
    assert alert.status == "firing" and alert.value > 0.25
    assert str(disturbed) in alert.title
    drifted = DriftReport.objects.get(model_version=disturbed)
    worst = "sharpness" if kind == "blur" else "brightness"
    assert drifted.stats[worst]["psi"] > 0.25 and drifted.stats[worst]["ks_p"] < 0.01
    assert alert.events.filter(kind="opened").exists()
    # evaluated again: the same open alert, not a second one
    assert services.rules_evaluate(project=project) == []
    assert Alert.objects.filter(rule=rule).count() == 1


def test_no_drift_without_a_training_profile(project, people, mv):
    rule = _rule(project, people)
    log_predictions(mv, [{"input_stats": {"brightness": 10.0}}] * 30)
    assert services.rules_evaluate(project=project) == []
    assert DriftReport.objects.get(model_version=mv).stats == {}
    rule.refresh_from_db()
    assert rule.last_value is None
