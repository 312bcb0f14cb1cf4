"""Before launch, the form and the API say how long a run will take: from the project's own earlier
runs of the recipe, else from the portal's reference rates; the run page compares it with the real time."""

import pytest
from django.test import Client

from apps.training import services
from apps.training.models import TrainingRun

from .conftest import TINY

pytestmark = pytest.mark.django_db


def estimate(api, people, project, version, **config):
    r = api(people["ds"]).post(
        f"/api/v1/projects/{project.slug}/training/estimate/",
        {"dataset_version": version.number, "config": {**TINY, **config}},
        format="json",
    )
    assert r.status_code == 200, r.content
    return r.json()


def test_reference_rates_first_then_the_projects_own_runs(project, people, version, api):
    first = estimate(api, people, project, version)
    assert first["seconds"] < 1 and "reference rates" in first["basis"] and first["text"] == "about 1 s"
    assert not TrainingRun.objects.exists()  # an estimate launches nothing
    done = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=TINY)
    # 8 training images × 1 epoch × (32/128)² took 20 s: 20 / 0.5 = 40 s per image-epoch unit
    TrainingRun.objects.filter(pk=done.pk).update(status="succeeded", training_seconds=20.0, epochs_run=1)
    one = estimate(api, people, project, version)
    assert one["basis"] == "from 1 earlier tiny_cnn run of this project" and abs(one["seconds"] - 20.0) < 0.1
    ten = estimate(api, people, project, version, epochs=10)
    assert abs(ten["seconds"] - 200.0) < 0.5 and ten["text"] == "about 3 min"
    r = api(people["ds"]).post(
        f"/api/v1/projects/{project.slug}/training/estimate/",
        {"dataset_version": version.number, "config": {"epochs": 0}},
        format="json",
    )
    assert r.status_code == 400 and "epochs" in r.content.decode()


def test_a_launch_keeps_its_estimate_and_the_page_compares_it(project, people, version):
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=TINY)
    assert run.estimated_seconds is not None and run.estimate_basis
    c = Client()
    c.force_login(people["ds"])
    page = c.get(f"/p/{project.slug}/training/runs/{run.pk}/").content.decode()
    assert 'id="run-expected"' in page and "before launch" in page and "% of the estimate" not in page
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", training_seconds=run.estimated_seconds * 2)
    page = c.get(f"/p/{project.slug}/training/runs/{run.pk}/").content.decode()
    assert "(200 % of the estimate)" in page
    form = c.get(f"/p/{project.slug}/training/new/").content.decode()
    assert 'id="run-estimate"' in form and "training/estimate.js" in form and 'id="version-numbers"' in form


def test_a_patch_recipes_reference_estimate_counts_its_heads_and_the_search():
    from apps.training.estimate import patch_reference_seconds
    from apps.training.ml.config import TrainConfig
    from apps.training.ml.recipes import DEFAULT_RECIPE

    default = TrainConfig.from_dict(DEFAULT_RECIPE)
    # 480 screws (336 training): ~30 + 48 + 0.0074 × 336 × 30 × 3 + the small CNN's 0.0103 × 336 × 30
    seconds = patch_reference_seconds(default, 336, 480)
    assert 380 < seconds < 420
    one = TrainConfig.from_dict({**DEFAULT_RECIPE, "head_ensemble": 1, "search_budget_s": 0})
    assert patch_reference_seconds(one, 336, 480) < seconds - 200  # two heads and the scratch candidate fewer
    tight = TrainConfig.from_dict({**DEFAULT_RECIPE, "search_budget_s": 320})
    assert patch_reference_seconds(tight, 336, 480) == pytest.approx(320, abs=1)  # the budget ends the search
    anomaly = TrainConfig.from_dict({**DEFAULT_RECIPE, "architecture": "patch_anomaly"})
    assert patch_reference_seconds(anomaly, 336, 480) == pytest.approx(78)
