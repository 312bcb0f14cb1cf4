"""The API: every endpoint for a member with the role, a member without it (403) and an outsider (404)."""

import pytest
import yaml
from django.urls import reverse

from apps.core.jobs import JobStatus
from apps.profiling import imagestats, services
from apps.profiling.models import AssertionRule, ProfileRun

from .conftest import profile_now


@pytest.fixture
def profiled(known, people):
    version, items = known
    return profile_now(version, people["ds"])


def url(name, project, *args):
    return reverse(name, args=[project.slug, *args])


@pytest.mark.parametrize(
    "name,args",
    [
        ("api-profiling-runs", ()),
        ("api-profiling-run", ("run",)),
        ("api-profiling-profile", ("run",)),
        ("api-profiling-suggest", ("run",)),
        ("api-profiling-assertions", ()),
        ("api-profiling-gate", ("version",)),
    ],
)
def test_reads_for_every_member_404_for_outsiders(api, profiled, people, project, name, args):
    args = [profiled.pk if a == "run" else profiled.version.number for a in args]
    u = url(name, project, *args)
    for who in ("labeler", "ds", "manager"):
        assert api(people[who]).get(u).status_code == 200, who
    assert api(people["outsider"]).get(u).status_code == 404
    assert api().get(u).status_code in (401, 403)


def test_compare_read(api, profiled, people, project):
    other = profile_now(profiled.version, people["ds"])
    u = url("api-profiling-compare", project) + f"?a={profiled.pk}&b={other.pk}"
    r = api(people["labeler"]).get(u)
    assert r.status_code == 200 and {d["what"] for d in r.json()["differences"]} >= {"Images", "Class good"}
    assert all(d["level"] == "same" for d in r.json()["differences"])  # the same version profiled twice
    assert api(people["outsider"]).get(u).status_code == 404
    assert api(people["labeler"]).get(url("api-profiling-compare", project)).status_code == 400


def test_run_detail_and_profile(api, profiled, people, project):
    r = api(people["labeler"]).get(url("api-profiling-run", project, profiled.pk)).json()
    assert r["status"] == "succeeded" and r["processed"] == r["total"] == 24 and r["percent"] == 100
    assert {x["check"] for x in r["results"]} >= {"no_unreadable"} and r["summary"]["failed_blocking"] == 3
    prof = api(people["labeler"]).get(url("api-profiling-profile", project, profiled.pk)).json()
    assert prof["bins"]["sharpness"] == imagestats.BINS["sharpness"] and "pixels" not in prof


def test_start_and_cancel(api, known, people, project, django_capture_on_commit_callbacks):
    version, _ = known
    u = url("api-profiling-runs", project)
    assert api(people["labeler"]).post(u, {"version": version.number}).status_code == 403
    assert api(people["outsider"]).post(u, {"version": version.number}).status_code == 404
    assert api(people["ds"]).post(u, {"version": 42}).status_code == 404
    assert api(people["ds"]).post(u, {"version": "x"}).json() == {"version": ["A valid integer is required."]}
    with django_capture_on_commit_callbacks() as callbacks:
        r = api(people["ds"]).post(u, {"version": version.number}, format="json")
    assert r.status_code == 202 and r.json()["status"] == "queued" and len(callbacks) == 1
    run_id = r.json()["id"]
    c = url("api-profiling-cancel", project, run_id)
    assert api(people["labeler"]).post(c).status_code == 403
    assert api(people["outsider"]).post(c).status_code == 404
    assert api(people["ds"]).post(c).json()["status"] == "cancelled"
    assert api(people["ds"]).post(c).status_code == 400
    assert ProfileRun.objects.get(pk=run_id).status == JobStatus.CANCELLED


def test_profile_of_an_unfinished_run_is_409(api, known, people, project):
    version, _ = known
    run = services.profile_run_start(version=version, user=people["ds"])
    assert api(people["ds"]).get(url("api-profiling-profile", project, run.pk)).status_code == 409
    assert api(people["ds"]).get(url("api-profiling-suggest", project, run.pk)).status_code == 409


def test_assertions_document_as_json_and_yaml(api, project, people):
    u = url("api-profiling-assertions", project)
    doc = {
        "assertions": [
            {"check": "min_images_per_class", "min": 10, "severity": "warning"},
            {"check": "stat_range", "stat": "entropy", "of": "q05", "min": 3},
        ]
    }
    assert api(people["labeler"]).put(u, doc, format="json").status_code == 403
    assert api(people["outsider"]).put(u, doc, format="json").status_code == 404
    r = api(people["ds"]).put(u, doc, format="json")
    assert r.status_code == 200 and r.json()["assertions"][1] == {
        "check": "stat_range",
        "severity": "blocking",
        "stat": "entropy",
        "of": "q05",
        "min": 3.0,
    }
    text = api(people["labeler"]).get(u + "?as=yaml")
    assert text["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(text.content)["assertions"][0]["min"] == 10
    new = "assertions:\n  - check: single_mode\n  - check: agreement\n    min: 0.6\n    severity: warning\n"
    r = api(people["ds"]).generic("PUT", u, new, content_type="application/yaml")
    assert r.status_code == 200, r.content
    assert list(AssertionRule.objects.filter(project=project).values_list("check_name", flat=True)) == [
        "single_mode",
        "agreement",
    ]
    bad = api(people["ds"]).generic(
        "PUT", u, "assertions:\n  - check: single_mode\n  - check: nope\n", content_type="text/yaml"
    )
    assert bad.status_code == 400 and "Assertion 2: unknown check 'nope'" in bad.json()["document"][0]
    assert AssertionRule.objects.filter(project=project).count() == 2  # nothing half-written


def test_suggest_returns_a_document_to_put_back(api, profiled, people, project):
    doc = api(people["labeler"]).get(url("api-profiling-suggest", project, profiled.pk)).json()
    r = api(people["ds"]).put(url("api-profiling-assertions", project), doc, format="json")
    assert r.status_code == 200 and r.json() == doc


def test_gate_and_override(api, profiled, people, project):
    n = profiled.version.number
    g = api(people["labeler"]).get(url("api-profiling-gate", project, n)).json()
    assert g["passed"] is False and g["profile_run"] == profiled.pk and len(g["failures"]) == 3
    o = url("api-profiling-override", project, n)
    body = {"reason": "Reviewed the leak by hand; the copy is removed in v2."}
    assert api(people["labeler"]).post(o, body).status_code == 403
    assert api(people["outsider"]).post(o, body).status_code == 404
    assert api(people["ds"]).post(o, {"reason": ""}).json() == {
        "reason": ["Write why this version may be trained on despite failed checks (at least 10 characters)."]
    }
    r = api(people["ds"]).post(o, body)
    assert r.status_code == 201 and r.json()["passed"] is True and r.json()["overridden_by"] == "ds"
    assert api(people["ds"]).get(url("api-profiling-gate", project, 99)).status_code == 404
