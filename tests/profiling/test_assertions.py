"""Built-in checks, the assertion document, suggestions, and results kept per run."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.models import AuditEvent
from apps.profiling import assertions as checks
from apps.profiling import services
from apps.profiling.models import AssertionResult, AssertionRule

from .conftest import profile_now


def doc(*entries):
    return {"assertions": list(entries)}


PROFILE = {
    "classes": ["defect", "good"],
    "splits": ["train", "test"],
    "counts": {"train": {"good": 30, "defect": 10}, "test": {"good": 8, "defect": 2}},
    "categorical": {"all": {"size": {"64x64": 49, "32x32": 1}, "mode": {"L": 50}}},
    "groups": {
        "all": {"brightness": {"n": 50, "mean": 120.0, "quantiles": [10, 20, 60, 120, 180, 220, 250]}},
        "class:good": {"brightness": {"n": 38, "mean": 140.0, "quantiles": [0] * 7}},
    },
    "duplicates": {"cross_split_exact": 1, "cross_split_near": 2},
    "unreadable": [{"name": "x.png"}],
    "label_completeness": 0.98,
    "unlabeled": 1,
    "agreement": None,
}


@pytest.mark.parametrize(
    "check,params,passed,measured",
    [
        ("min_images_per_class", {"min": 12}, True, 12),
        ("min_images_per_class", {"min": 13}, False, 12),
        ("min_images_per_class", {"min": 3, "split": "test"}, False, 2),
        ("class_ratio", {"min": 0.2, "max": 0.8}, True, {"defect": 0.24, "good": 0.76}),
        ("class_ratio", {"min": 0.25, "max": 0.8}, False, {"defect": 0.24, "good": 0.76}),
        ("class_ratio", {"class": "good", "min": 0.7, "max": 1.0}, True, {"good": 0.76}),
        ("no_cross_split_duplicates", {"near": True}, False, 3),
        ("no_cross_split_duplicates", {"near": False}, False, 1),
        ("single_size", {}, False, 2),
        ("single_mode", {}, True, 1),
        ("stat_range", {"stat": "brightness", "of": "mean", "min": 100, "max": 130}, True, 120.0),
        ("stat_range", {"stat": "brightness", "of": "q95", "max": 200}, False, 220),
        ("stat_range", {"stat": "brightness", "of": "mean", "min": 141, "class": "good"}, False, 140.0),
        ("stat_range", {"stat": "contrast", "of": "mean", "min": 1}, False, None),
        ("label_completeness", {"min": 0.98}, True, 0.98),
        ("label_completeness", {"min": 0.99}, False, 0.98),
        ("agreement", {"min": 0.5}, False, None),
        ("no_unreadable", {"max": 0}, False, 1),
        ("no_unreadable", {"max": 1}, True, 1),
    ],
)
def test_each_check_measures_and_judges(check, params, passed, measured):
    o = checks.evaluate(check, params, PROFILE)
    assert (o.passed, o.measured) == (passed, measured) and o.bound and o.message


def test_agreement_check_uses_the_measured_value():
    assert checks.evaluate("agreement", {"min": 0.7}, {**PROFILE, "agreement": 0.75}).passed
    assert not checks.evaluate("agreement", {"min": 0.8}, {**PROFILE, "agreement": 0.75}).passed


def test_document_parses_yaml_and_fills_defaults():
    rules = checks.parse_document("""
assertions:
  - check: min_images_per_class
    min: 20
  - check: stat_range
    severity: warning
    stat: sharpness
    of: q05
    min: 10
  - check: no_cross_split_duplicates
""")
    assert rules == [
        {"check": "min_images_per_class", "severity": "blocking", "params": {"min": 20}},
        {"check": "stat_range", "severity": "warning", "params": {"stat": "sharpness", "of": "q05", "min": 10.0}},
        {"check": "no_cross_split_duplicates", "severity": "blocking", "params": {"near": True}},
    ]
    assert checks.parse_document(checks.to_yaml(checks.to_document(rules))) == rules  # round trip


@pytest.mark.parametrize(
    "entry,message",
    [
        ({"check": "nope"}, "Assertion 1: unknown check 'nope'"),
        ({"check": "min_images_per_class"}, "parameter 'min' is required"),
        ({"check": "min_images_per_class", "min": "many"}, "'min' must be a number"),
        ({"check": "min_images_per_class", "min": 2.5}, "must be a whole number"),
        ({"check": "class_ratio", "min": 0.9, "max": 0.1}, "'min' (0.9) is above 'max' (0.1)"),
        ({"check": "class_ratio", "max": 2}, "between 0 and 1"),
        ({"check": "single_size", "tolerance": 3}, "unknown parameter(s) tolerance"),
        ({"check": "single_size", "severity": "fatal"}, "severity must be blocking or warning"),
        ({"check": "stat_range", "stat": "brightness"}, "give 'min', 'max' or both"),
        ({"check": "stat_range", "stat": "colourfulness", "min": 1}, "'stat' must be one of"),
        ({"check": "no_cross_split_duplicates", "near": "yes"}, "must be true or false"),
    ],
)
def test_document_errors_name_the_entry_and_field(entry, message):
    with pytest.raises(ValidationError) as exc:
        checks.parse_document(doc(entry))
    assert any(message in m for m in exc.value.message_dict["document"]), exc.value.message_dict


def test_bad_yaml_is_refused_with_the_reason():
    with pytest.raises(ValidationError, match="Not valid YAML"):
        checks.parse_document("assertions: [ {check: single_size")


def test_replace_is_all_or_nothing_and_audited(project, people):
    services.assertions_replace(project=project, user=people["ds"], document=doc({"check": "single_mode"}))
    with pytest.raises(ValidationError):
        services.assertions_replace(
            project=project, user=people["ds"], document=doc({"check": "single_size"}, {"check": "bogus"})
        )
    assert list(AssertionRule.objects.filter(project=project).values_list("check_name", flat=True)) == ["single_mode"]
    ev = AuditEvent.objects.filter(project=project, action="profiling.assertions_replace").get()
    assert ev.actor == people["ds"] and ev.data["after"] == {
        "assertions": [{"check": "single_mode", "severity": "blocking"}]
    }


def test_only_data_scientists_replace_assertions(project, people):
    with pytest.raises(PermissionDenied):
        services.assertions_replace(project=project, user=people["pm"], document=doc())


def test_defaults_until_the_team_saves_its_own(project, people):
    assert [r["check"] for r in services.assertion_rules_for(project)] == [
        e["check"] for e in services.DEFAULT_DOCUMENT["assertions"]
    ]
    services.assertions_replace(project=project, user=people["ds"], document="assertions: []")
    assert services.assertion_rules_for(project) == []


def test_suggestions_from_a_trusted_profile_pass_on_it(known, people):
    version, _ = known
    run = profile_now(version, people["ds"])
    suggested = checks.suggest(run.profile)
    kinds = {s["check"] for s in suggested}
    assert {
        "min_images_per_class",
        "class_ratio",
        "no_cross_split_duplicates",
        "single_size",
        "single_mode",
        "stat_range",
        "label_completeness",
        "no_unreadable",
    } <= kinds
    assert "agreement" not in kinds  # not measured, so not proposed
    failing = [s for s in suggested if not checks.evaluate(s["check"], s["params"], run.profile).passed]
    # The planted leakage and unreadable file are what a suggestion is for: they fail; nothing else does.
    assert sorted(s["check"] for s in failing) == ["no_cross_split_duplicates", "no_unreadable"]
    checks.parse_document(checks.to_document(suggested))  # a valid document


def test_each_profile_stores_results_with_measured_value_and_bound(known, people):
    version, _ = known
    services.assertions_replace(
        project=version.project,
        user=people["ds"],
        document=doc(
            {"check": "min_images_per_class", "min": 5},
            {"check": "no_cross_split_duplicates", "near": False},
            {"check": "label_completeness", "min": 0.9, "severity": "warning"},
            {"check": "stat_range", "stat": "brightness", "of": "median", "min": 50, "max": 200},
        ),
    )
    run = profile_now(version, people["ds"])
    res = {r.check_name: r for r in AssertionResult.objects.filter(run=run)}
    assert res["min_images_per_class"].passed and res["min_images_per_class"].measured == 9
    assert res["min_images_per_class"].bound == "≥ 5"
    assert not res["no_cross_split_duplicates"].passed and res["no_cross_split_duplicates"].measured == 1
    assert res["label_completeness"].passed and res["label_completeness"].measured == pytest.approx(23 / 24, abs=1e-4)
    assert res["stat_range"].passed and res["stat_range"].bound == "[50, 200]"
    assert run.summary == {"passed": 3, "failed_blocking": 1, "failed_warning": 0}
    # Editing the rules later does not rewrite this run's history; a new run keeps its own.
    services.assertions_replace(project=version.project, user=people["ds"], document=doc({"check": "single_mode"}))
    run2 = profile_now(version, people["ds"])
    assert (
        AssertionResult.objects.filter(run=run).count() == 4 and AssertionResult.objects.filter(run=run2).count() == 1
    )
