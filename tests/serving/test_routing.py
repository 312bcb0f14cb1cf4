"""Canary and shadow routing, the comparison, and the pages that show it."""

import pytest

from apps.serving import services
from apps.serving.models import PredictionLog
from apps.serving.selectors import canary_comparison
from tests.training.conftest import tiny_png

from .conftest import predict_url
from .test_api import post_files

pytestmark = pytest.mark.django_db


def route(rm, user, mode, candidate=None, share=None):
    return services.serving_route_set(
        registered_model=rm, user=user, mode=mode, candidate=candidate, canary_share=share
    )


def test_canary_answers_its_share_of_unpinned_requests(project, people, served, staging, engine, api):
    cand = staging("bad")
    c = api(people["ds"])
    route(served.registered_model, people["ds"], "canary", cand, 1.0)
    r = post_files(c, predict_url(project), ("a.png", tiny_png(1, "defect")))
    assert r.json()["route"] == "canary" and r.json()["model_version"] == cand.number and r.json()["class"] == "good"
    # A pinned request is never rerouted.
    assert (
        post_files(c, predict_url(project) + "?version=1", ("a.png", tiny_png(1, "defect"))).json()["route"] == "pinned"
    )
    route(served.registered_model, people["ds"], "canary", cand, 0.5)
    routes = [post_files(c, predict_url(project), ("a.png", tiny_png(i, "defect"))).json()["route"] for i in range(30)]
    assert {"canary", "production"} == set(routes)
    route(served.registered_model, people["ds"], "off")
    assert post_files(c, predict_url(project), ("a.png", tiny_png(1, "defect"))).json()["route"] == "production"
    engine.writer.flush()
    assert PredictionLog.objects.filter(route="canary", model_version=cand).count() == 1 + routes.count("canary")


def test_shadow_mirrors_every_request_answers_from_production_and_compares(
    project, people, served, staging, engine, api
):
    cand = staging("bad")
    route(served.registered_model, people["manager"], "shadow", cand)
    c = api(people["pm"])
    for i in range(4):
        r = post_files(
            c,
            predict_url(project),
            (f"{i}.png", tiny_png(i, ("good", "defect")[i % 2])),
            (f"x{i}.png", tiny_png(i + 10, "defect")),
        )
        assert r.json()["route"] == "production" and r.json()["model_version"] == 1
    engine.pointers[served.registered_model_id].candidate.batcher.close()  # wait for the shadow calls to finish
    engine.pointers[served.registered_model_id].candidate.batcher._thread.join(10)
    engine.writer.flush()
    assert PredictionLog.objects.filter(route="shadow", model_version=cand).count() == 8
    assert PredictionLog.objects.filter(route="production", model_version=served).count() == 8
    comp = canary_comparison(served.registered_model)
    assert comp["mode"] == "shadow" and comp["pairs"] == 8 and comp["agreement"] == 0.0  # the bad model disagrees
    assert comp["production"]["version"] == 1 and comp["candidate"]["version"] == cand.number
    assert comp["production"]["n"] == comp["candidate"]["n"] == 8
    assert comp["production"]["latency_p99_ms"] >= comp["production"]["latency_p50_ms"] > 0
    assert comp["candidate"]["class_shares"]["good"] == 1 - comp["production"]["class_shares"]["good"]
    assert comp["disagreements"][0]["n"] == 6  # six defect inputs the bad model calls good


def test_the_comparison_shows_on_the_serving_page_and_the_promotion_page(
    project, people, served, staging, engine, api, client_for
):
    from apps.registry.services import promotion_request_create

    cand = staging("good")  # a good candidate, so its promotion request passes the gate
    route(served.registered_model, people["ds"], "shadow", cand)
    for i in range(3):
        post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(i, "defect")))
    engine.pointers[served.registered_model_id].candidate.batcher.close()
    engine.pointers[served.registered_model_id].candidate.batcher._thread.join(10)
    engine.writer.flush()
    html = client_for(people["labeler"]).get(f"/p/{project.slug}/serving/").content.decode()
    assert (
        'class="comparison-table"' in html and "Agreement" in html and "1.000" in html and "3 shadowed inputs" in html
    )
    req = promotion_request_create(version=cand, user=people["ds"], note="it agrees")
    html = client_for(people["manager"]).get(f"/p/{project.slug}/registry/requests/{req.pk}/").content.decode()
    assert 'id="canary"' in html and 'class="comparison-table"' in html and f"Candidate v{cand.number}" in html


def test_nothing_routed_means_no_comparison(project, served):
    assert canary_comparison(served.registered_model) is None


def test_route_checks_name_the_field(project, people, served, staging):
    from django.core.exceptions import ValidationError

    rm = served.registered_model
    with pytest.raises(ValidationError, match="staging version"):
        route(rm, people["ds"], "canary", served, 0.1)  # production cannot be its own canary
    with pytest.raises(ValidationError, match="Choose the staging version"):
        route(rm, people["ds"], "shadow")
    with pytest.raises(ValidationError, match="between 0 and 1"):
        route(rm, people["ds"], "canary", staging("bad"), 1.5)
    with pytest.raises(ValidationError, match="mode must be"):
        route(rm, people["ds"], "sideways")


def test_a_promoted_candidate_stops_being_routed(project, people, served, staging, engine, api, second_manager):
    from apps.registry import services as reg
    from apps.registry.models import RegistrySettings

    cand = staging("good")
    route(served.registered_model, people["ds"], "canary", cand, 1.0)
    assert (
        post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect"))).json()["route"]
        == "canary"
    )
    RegistrySettings.objects.update_or_create(project=project, defaults={"required_approvals": 1})
    req = reg.promotion_request_create(version=cand, user=people["ds"], note="go")
    reg.promotion_request_approve(request=req, user=people["manager"], comment="ok")
    r = post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(1, "defect"))).json()
    assert r["route"] == "production" and r["model_version"] == cand.number


def test_route_api_roles(project, people, served, staging, api):
    cand = staging("bad")
    url = f"/api/v1/projects/{project.slug}/serving/models/screws/route/"
    body = {"mode": "canary", "candidate": cand.number, "canary_share": 0.25}
    r = api(people["ds"]).put(url, body, format="json")
    assert r.status_code == 200 and r.json() == {
        "model": "screws",
        "production": 1,
        "mode": "canary",
        "candidate": cand.number,
        "canary_share": 0.25,
        "engine": "keras",
    }
    assert api(people["labeler"]).get(url).json()["mode"] == "canary"  # members read
    assert api(people["labeler"]).put(url, body, format="json").status_code == 403
    assert api(people["pm"]).put(url, body, format="json").status_code == 403
    assert api(people["outsider"]).put(url, body, format="json").status_code == 404
    assert api().put(url, body, format="json").status_code == 401
    r = api(people["manager"]).put(url, {"mode": "canary", "candidate": 99}, format="json")
    assert r.status_code == 400 and "no version 99" in r.json()["candidate"][0]
    r = api(people["manager"]).put(url, {"mode": "shadow", "candidate": 1}, format="json")
    assert r.status_code == 400 and "only a staging version" in r.json()["candidate"][0]
    comp = api(people["labeler"]).get(f"/api/v1/projects/{project.slug}/serving/models/screws/comparison/")
    assert comp.status_code == 200
