"""Every training page: a member with the role, a member without it (403), an outsider (404)."""

import pytest
from django.test import Client

from apps.training import services
from apps.training.models import TrainingRun

from .conftest import TINY
from .test_api import finished_run  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def client(user):
    c = Client()
    c.force_login(user)
    return c


def form_data(version, **extra):
    data = {
        "dataset_version": version.pk,
        "name": "from the form",
        "architecture": "tiny_cnn",
        "image_size": 32,
        "channels": 1,
        "augmentation": "none",
        "epochs": 1,
        "batch_size": 4,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "early_stopping_patience": 3,
        "dropout": 0.2,
        "seed": 5,
        "accelerator": "cpu",
    }
    data.update(extra)
    return data


def test_pages_check_roles(project, people, version, finished_run):
    slug = project.slug
    sweep = services.sweep_create(
        project=project, user=people["ds"], dataset_version=version, base_config=TINY, space={"seed": [1]}
    )
    finished_run.predictions[0]["item"]
    read_pages = [
        f"/p/{slug}/training/",
        f"/p/{slug}/training/runs/{finished_run.pk}/",
        f"/p/{slug}/training/runs/{finished_run.pk}/evaluation/",
        f"/p/{slug}/training/compare/?runs={finished_run.pk}",
        f"/p/{slug}/training/sweeps/{sweep.pk}/",
    ]
    for url in read_pages:
        assert client(people["outsider"]).get(url).status_code == 404, url
        assert client(people["labeler"]).get(url).status_code == 200, url
    ds_pages = [f"/p/{slug}/training/new/", f"/p/{slug}/training/sweeps/new/"]
    for url in ds_pages:
        assert client(people["outsider"]).get(url).status_code == 404, url
        assert client(people["labeler"]).get(url).status_code == 403, url
        assert client(people["ds"]).get(url).status_code == 200, url
    posts = [
        (f"/p/{slug}/training/new/", form_data(version)),
        (f"/p/{slug}/training/runs/{finished_run.pk}/rerun/", {}),
        (
            f"/p/{slug}/training/sweeps/new/",
            {**form_data(version), "method": "grid", "max_trials": 2, "metric": "val_accuracy", "space_seed": "1, 2"},
        ),
        (f"/p/{slug}/training/sweeps/{sweep.pk}/cancel/", {}),
    ]
    for url, data in posts:
        assert client(people["outsider"]).post(url, data).status_code == 404, url
        assert client(people["labeler"]).post(url, data).status_code == 403, url
        assert client(people["ds"]).post(url, data).status_code == 302, url
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=TINY)
    url = f"/p/{slug}/training/runs/{run.pk}/cancel/"
    assert client(people["outsider"]).post(url).status_code == 404
    assert client(people["labeler"]).post(url).status_code == 403
    assert client(people["ds"]).post(url).status_code == 302
    assert TrainingRun.objects.get(pk=run.pk).status == "cancelled"


def test_run_form_launches_with_every_hyperparameter(project, people, version):
    r = client(people["ds"]).post(
        f"/p/{project.slug}/training/new/", form_data(version, class_weighting="on", early_stopping="on")
    )
    run = TrainingRun.objects.get()
    assert r.status_code == 302 and r["Location"].endswith(f"/runs/{run.pk}/")
    assert run.config["seed"] == 5 and run.config["class_weighting"] is True and run.config["early_stopping"] is True
    assert run.config["augmentation"] == "none" and run.config["optimizer"] == "adam" and run.name == "from the form"


def test_run_form_shows_the_refusal(project, people, make_tiny_version):
    version = make_tiny_version(n=8, splits=["train", "val", "train", "test"])  # no training "defect"
    r = client(people["ds"]).post(f"/p/{project.slug}/training/new/", form_data(version))
    assert r.status_code == 400 and "has no training images" in r.content.decode()
    r = client(people["ds"]).post(f"/p/{project.slug}/training/new/", form_data(version, learning_rate=9))
    assert r.status_code == 400 and "learning_rate must be between" in r.content.decode().replace("&#x27;", "'")
    assert not TrainingRun.objects.exists()


def test_run_page_carries_the_live_feed_and_charts(project, people, finished_run):
    html = client(people["labeler"]).get(f"/p/{project.slug}/training/runs/{finished_run.pk}/").content.decode()
    assert "vendor/plotly-cartesian.min.js" in html and 'id="run-progress"' in html and "run-live" in html
    assert "Cancel run" not in html and "Rerun" not in html  # a labeler cannot act
    html = client(people["ds"]).get(f"/p/{project.slug}/training/runs/{finished_run.pk}/").content.decode()
    assert "Rerun (same config and seed)" in html


def test_evaluation_and_compare_pages(project, people, finished_run):
    html = (
        client(people["labeler"]).get(f"/p/{project.slug}/training/runs/{finished_run.pk}/evaluation/").content.decode()
    )
    assert "fig-cm" in html and "fig-roc" in html and "Send selected" not in html
    html = client(people["ds"]).get(f"/p/{project.slug}/training/runs/{finished_run.pk}/evaluation/").content.decode()
    assert "Send selected to the labeling queue" in html
    html = client(people["labeler"]).get(f"/p/{project.slug}/training/compare/?runs={finished_run.pk}").content.decode()
    assert "chart-par" in html and "compare-table" in html


def test_stage_on_the_project_page(project, people, finished_run):
    html = client(people["labeler"]).get(f"/p/{project.slug}/").content.decode()
    assert f"/p/{project.slug}/training/" in html and "test accuracy 0.500" in html


def test_compare_table_shows_what_differs(project, people, version):
    a = services.training_run_create(
        project=project, user=people["ds"], dataset_version=version, config={**TINY, "learning_rate": 0.01}
    )
    b = services.training_run_create(
        project=project, user=people["ds"], dataset_version=version, config={**TINY, "learning_rate": 0.001}
    )
    r = client(people["labeler"]).get(f"/p/{project.slug}/training/compare/?runs={a.pk}&runs={b.pk}")
    assert [row["id"] for row in r.context["rows"]] == [b.pk, a.pk]
    assert r.context["keys"] == ["learning_rate"]
    assert ("architecture", "tiny_cnn") in r.context["shared"]


def test_run_and_evaluation_pages_offer_register_this_model(project, people, finished_run):
    from apps.core.storage import blob_put
    from apps.registry.services import model_version_register
    from apps.training.models import Artifact
    from tests.registry.conftest import keras_model_bytes

    blob = blob_put(keras_model_bytes("good"), ext="keras", content_type="application/octet-stream")
    Artifact.objects.create(
        run=finished_run, kind="keras", blob=blob, sha256=blob.sha256, size=blob.size, filename="model.keras"
    )
    slug = project.slug
    for url in (
        f"/p/{slug}/training/runs/{finished_run.pk}/",
        f"/p/{slug}/training/runs/{finished_run.pk}/evaluation/",
    ):
        html = client(people["ds"]).get(url).content.decode()
        assert 'id="register-this"' in html and f"/p/{slug}/registry/?run={finished_run.pk}#register-form" in html
        assert "Rerun" in html
        assert 'id="register-this"' not in client(people["labeler"]).get(url).content.decode()
    # The registry page opens with that run chosen.
    html = client(people["ds"]).get(f"/p/{slug}/registry/?run={finished_run.pk}").content.decode()
    assert f'<option value="{finished_run.pk}" selected>' in html
    v = model_version_register(run=finished_run, registered_model_name="screws", user=people["ds"])
    html = client(people["labeler"]).get(f"/p/{slug}/training/runs/{finished_run.pk}/").content.decode()
    assert f"Registered as {v}" in html and 'id="register-this"' not in html


def test_compare_plots_only_what_differs_and_overlays_curves(project, people, version):
    import json

    from apps.training.models import EpochMetric

    a = services.training_run_create(
        project=project, user=people["ds"], dataset_version=version, config={**TINY, "learning_rate": 0.01}
    )
    b = services.training_run_create(
        project=project, user=people["ds"], dataset_version=version, config={**TINY, "learning_rate": 0.001}
    )
    for run in (a, b):
        for epoch in (1, 2):
            EpochMetric.objects.create(
                run=run,
                epoch=epoch,
                seconds=1.0,
                metrics={
                    "loss": 1.0 / epoch,
                    "val_loss": 1.2 / epoch,
                    "accuracy": 0.5 + epoch / 10,
                    "val_accuracy": 0.4 + epoch / 10,
                },
            )
    r = client(people["labeler"]).get(f"/p/{project.slug}/training/compare/?runs={a.pk}&runs={b.pk}")
    par = json.loads(r.context["par_fig"])
    labels = par["layout"]["xaxis"]["ticktext"]
    assert "learning_rate" in labels and "batch_size" not in labels and "architecture" not in labels
    assert {t["type"] for t in par["data"]} == {"scatter"}  # drawn by the cartesian bundle, no WebGL
    loss = json.loads(r.context["loss_fig"])
    names = [t["name"] for t in loss["data"]]
    assert names == [f"#{b.pk} val_loss", f"#{b.pk} loss", f"#{a.pk} val_loss", f"#{a.pk} loss"]
    assert loss["data"][0]["y"] == [1.2, 0.6]
    html = r.content.decode()
    assert 'id="chart-overlay-loss"' in html and 'id="fig-overlay-acc"' in html
