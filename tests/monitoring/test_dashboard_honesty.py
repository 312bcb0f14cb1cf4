"""The dashboard says what it cannot know: no rules is not "all quiet", small samples are "too few
to judge", figures worse than the approved targets are flagged; axes and names read well."""

import json

import pytest
from django.test import Client

from apps.monitoring import charts, services
from apps.monitoring.models import RuleKind
from tests.factories import approve_scope

from .conftest import log_predictions

pytestmark = pytest.mark.django_db


def page(user, project, query=""):
    c = Client()
    c.force_login(user)
    r = c.get(f"/p/{project.slug}/monitoring/{query}")
    assert r.status_code == 200
    return r


def test_no_rules_is_not_all_quiet(project, people):
    html = page(people["ds"], project).content.decode()
    assert 'id="no-rules"' in html and "No alert rules yet" in html and "All quiet" not in html
    assert f'href="/p/{project.slug}/monitoring/rules/"' in html and "Add alert rules" in html
    assert "Add alert rules" not in page(people["labeler"], project).content.decode()  # they cannot add them
    services.alert_rule_create(
        project=project, user=people["ds"], data={"name": "drift", "kind": RuleKind.INPUT_DRIFT, "threshold": 0.2}
    )
    html = page(people["ds"], project).content.decode()
    assert 'id="all-quiet"' in html and "1 rule watching" in html and "No alert rules yet" not in html


def test_latency_worse_than_the_target_is_flagged(project, people, mv):
    approve_scope(project, [{"metric": "p95_latency_ms", "comparator": "<=", "target": 100, "unit": "ms"}])
    log_predictions(mv, [{"latency_ms": 20.0}] * 10)
    assert "target-missed" not in page(people["pm"], project).content.decode()
    log_predictions(mv, [{"latency_ms": 400.0}] * 10)
    html = page(people["pm"], project).content.decode()
    assert "worse than the target p95_latency_ms ≤ 100 ms" in html


def test_small_samples_are_too_few_to_judge(project, people, mv):
    html = page(people["pm"], project).content.decode()
    assert 'id="live-too-few"' in html and "too few to judge: 0 labeled inputs" in html


def test_live_accuracy_below_target_is_flagged_once_there_are_enough(project, people, mv, monkeypatch):
    from apps.monitoring import views

    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.95}])
    real = views.selectors.live_scores

    def scores(n, acc):
        def fake(*a, **kw):
            out = real(*a, **kw)
            out["overall"] = {"n": n, "accuracy": acc, "precision": acc, "recall": acc}
            return out

        return fake

    monkeypatch.setattr(views.selectors, "live_scores", scores(12, 0.5))
    html = page(people["pm"], project).content.decode()
    assert "too few to judge: 12 labeled inputs" in html and "target-missed" not in html
    monkeypatch.setattr(views.selectors, "live_scores", scores(200, 0.8))
    html = page(people["pm"], project).content.decode()
    assert "too few to judge" not in html and "worse than the target accuracy ≥ 0.95 (now 0.8)" in html


def test_axes_and_names_read_well(project, people, mv):
    log_predictions(mv, [{"predicted_class": "good"}, {"predicted_class": "defect"}])
    ctx = page(people["pm"], project).context
    figures = {k: json.loads(v) for k, v in ctx["figures"].items()}
    for name in ("volume", "classes", "rate", "infra_queues", "infra_jobs", "infra_storage"):
        assert figures[name]["layout"]["yaxis"]["rangemode"] == "tozero", name  # counts from 0, never below
    assert figures["volume"]["layout"]["xaxis"]["tickformat"] == "%H:%M<br>%b %d"  # the default 24 h range
    assert (
        json.loads(page(people["pm"], project, "?range=30d").context["figures"]["volume"])["layout"]["xaxis"][
            "tickformat"
        ]
        == "%b %d"
    )
    assert figures["psi"]["layout"]["xaxis"]["dtick"] == 86_400_000  # one tick per day, not per hour
    # Bars carry their class colours (plain Plotly JSON: marker.color, not graph_objects' marker_color).
    assert all("marker_color" not in t for f in figures.values() for t in f["data"])
    colours = {t["name"]: t["marker"]["color"] for t in figures["classes"]["data"]}
    assert colours == {"good": "#1a7f4b", "defect": "#b42318"}  # the label schema's colours, good green
    assert charts.endpoint_label("api-labeling-next") == "labeling next (API)"
    assert charts.endpoint_label("training-run-evaluation") == "training run evaluation"
    assert charts.endpoint_label("unmatched") == "other (no route)"
