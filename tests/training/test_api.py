"""Every training API endpoint: a member with the role, a member without it (403), an outsider (404)."""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.storage import blob_put
from apps.training import services
from apps.training.ml.evaluate import classification_metrics
from apps.training.models import Artifact, TrainingRun

from .conftest import TINY

pytestmark = pytest.mark.django_db
BASE = "/api/v1/projects/{slug}/training/"


@pytest.fixture
def finished_run(project, people, version):
    """A succeeded run written directly (no training): metrics, predictions and one artifact."""
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=TINY)
    test_items = list(version.entries.filter(split="test").order_by("item_id").values_list("item_id", flat=True))
    y = np.array([0, 1, 0, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    metrics = classification_metrics(y, probs, ["defect", "good"])
    preds = [
        {"item": i, "true": int(t), "pred": int(p.argmax()), "confidence": float(p.max()), "probs": p.tolist()}
        for i, t, p in zip(test_items, y, probs)
    ]
    TrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded",
        test_metrics=metrics,
        predictions=preds,
        best_val={"val_accuracy": 0.75},
        training_seconds=1.5,
    )
    blob = blob_put(b'{"card": 1}', ext="json", content_type="application/json")
    Artifact.objects.create(
        run=run, kind="model_card", blob=blob, sha256=blob.sha256, size=blob.size, filename="model_card.json"
    )
    run.refresh_from_db()
    return run


def endpoints(project, version, run, sweep_id):
    b = BASE.format(slug=project.slug)
    wrong = next(p["item"] for p in run.predictions if p["true"] != p["pred"])
    return [
        # (method, url, data, read-only?, ok status)
        ("get", b + "runs/", None, True, 200),
        ("post", b + "runs/", {"dataset_version": version.number, "config": TINY}, False, 201),
        ("get", b + f"runs/{run.pk}/", None, True, 200),
        ("get", b + f"runs/{run.pk}/live/", None, True, 200),
        ("get", b + f"runs/{run.pk}/artifacts/model_card/", None, True, 200),
        ("get", b + f"runs/{run.pk}/misclassified/", None, True, 200),
        ("post", b + f"runs/{run.pk}/misclassified/", {"items": [wrong]}, False, 200),
        ("post", b + f"runs/{run.pk}/rerun/", None, False, 201),
        ("get", b + "sweeps/", None, True, 200),
        (
            "post",
            b + "sweeps/",
            {"dataset_version": version.number, "base_config": TINY, "space": {"seed": [1, 2]}},
            False,
            201,
        ),
        ("get", b + f"sweeps/{sweep_id}/", None, True, 200),
        ("post", b + f"sweeps/{sweep_id}/cancel/", None, False, 200),
    ]


@pytest.fixture
def sweep_id(project, people, version):
    return services.sweep_create(
        project=project, user=people["ds"], dataset_version=version, base_config=TINY, space={"seed": [3]}
    ).pk


def test_every_endpoint_checks_roles(project, people, version, finished_run, sweep_id, api):
    for method, url, data, read_only, ok in endpoints(project, version, finished_run, sweep_id):
        out = getattr(api(people["outsider"]), method)(url, data, format="json")
        assert out.status_code == 404, (method, url, out.status_code)
        lab = getattr(api(people["labeler"]), method)(url, data, format="json")
        assert lab.status_code == (ok if read_only else 403), (method, url, lab.status_code, lab.content[:200])
        ds = getattr(api(people["ds"]), method)(url, data, format="json")
        assert ds.status_code == ok, (method, url, ds.status_code, ds.content[:300])
        assert getattr(api(), method)(url, data, format="json").status_code in (401, 403)


def test_cancel_endpoint_roles(project, people, version, api):
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=TINY)
    url = BASE.format(slug=project.slug) + f"runs/{run.pk}/cancel/"
    assert api(people["outsider"]).post(url).status_code == 404
    assert api(people["labeler"]).post(url).status_code == 403
    r = api(people["ds"]).post(url)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = api(people["ds"]).post(url)
    assert again.status_code == 400 and "only a queued or running run" in str(again.json())


def test_launch_over_the_api_refuses_bad_input_with_field_messages(project, people, make_tiny_version, api):
    building = make_tiny_version(status="building")
    url = BASE.format(slug=project.slug) + "runs/"
    r = api(people["ds"]).post(url, {"dataset_version": building.number, "config": TINY}, format="json")
    assert r.status_code == 400 and "not ready" in str(r.json()["dataset_version"])
    ready = make_tiny_version()
    r = api(people["ds"]).post(
        url, {"dataset_version": ready.number, "config": {**TINY, "learning_rate": 2}}, format="json"
    )
    assert r.status_code == 400 and "between" in r.json()["learning_rate"][0]
    r = api(people["ds"]).post(url, {"dataset_version": ready.number, "config": "{oops"}, format="multipart")
    assert r.status_code == 400 and "valid JSON" in str(r.json()["config"])
    assert not TrainingRun.objects.exists()


def test_finetune_upload_over_the_api(project, people, version, api, tmp_path):
    import json

    from apps.training.ml import builders
    from apps.training.ml.config import TrainConfig

    path = tmp_path / "m.keras"
    builders.build_model(TrainConfig(architecture="tiny_cnn", image_size=32), 3).save(path)
    r = api(people["ds"]).post(
        BASE.format(slug=project.slug) + "runs/",
        {
            "dataset_version": version.number,
            "config": json.dumps({**TINY, "architecture": "finetune"}),
            "base_model": SimpleUploadedFile("m.keras", path.read_bytes()),
        },
        format="multipart",
    )
    assert r.status_code == 201, r.content
    assert TrainingRun.objects.get(pk=r.json()["id"]).base_model is not None


def test_run_detail_shape_for_the_registry(project, people, finished_run, api):
    r = api(people["labeler"]).get(BASE.format(slug=project.slug) + f"runs/{finished_run.pk}/")
    body = r.json()
    assert body["test_metrics"]["classes"] == ["defect", "good"]
    assert body["artifacts"][0]["sha256"] == finished_run.artifacts.get().sha256


def test_misclassified_cell_filter(project, people, finished_run, api):
    url = BASE.format(slug=project.slug) + f"runs/{finished_run.pk}/misclassified/"
    rows = api(people["labeler"]).get(url, {"true": "defect", "pred": "good"}).json()
    assert len(rows) == 1 and rows[0]["true"] == "defect" and rows[0]["pred"] == "good"
    assert rows[0]["image_url"].endswith(f"/data/items/{rows[0]['item']}/thumb")
    assert len(api(people["labeler"]).get(url).json()) == 2  # all misclassified
    assert len(api(people["labeler"]).get(url, {"true": "good", "pred": "good"}).json()) == 1


def test_artifact_download_carries_its_hash(project, people, finished_run, api):
    r = api(people["labeler"]).get(BASE.format(slug=project.slug) + f"runs/{finished_run.pk}/artifacts/model_card/")
    assert b"".join(r.streaming_content) == b'{"card": 1}'
    assert r["X-Content-SHA256"] == finished_run.artifacts.get().sha256
    missing = api(people["labeler"]).get(BASE.format(slug=project.slug) + f"runs/{finished_run.pk}/artifacts/keras/")
    assert missing.status_code == 404


def test_the_api_names_dataset_versions_by_number_in_a_second_project(project, people, api):
    """A second project's v1 has another database id: the API takes the number it shows."""
    from apps.accounts.models import Role
    from tests.factories import ProjectFactory, make_item, make_version, mark_profiled, member

    from .conftest import tiny_png

    def tiny(p, n=16, offset=0):
        splits = ["train"] * 8 + ["val"] * 4 + ["test"] * 4
        entries = [
            (
                make_item(p, data=tiny_png(offset + i, ("good", "defect")[i % 2]), name=f"s{i}.png"),
                splits[i % 16],
                ("good", "defect")[i % 2],
            )
            for i in range(n)
        ]
        v = make_version(p, entries)
        mark_profiled(v)
        return v

    first_v1, _first_v2 = tiny(project), tiny(project, offset=100)
    second = ProjectFactory()
    ds = member(second, Role.DATA_SCIENTIST)
    second_v1 = tiny(second, offset=200)
    assert second_v1.number == 1 and second_v1.pk not in (1,) and second_v1.pk != first_v1.pk
    listed = api(ds).get(f"/api/v1/projects/{second.slug}/data/versions/").json()
    numbers = [v["number"] for v in (listed["results"] if isinstance(listed, dict) else listed)]
    assert numbers == [1]
    url = BASE.format(slug=second.slug)
    r = api(ds).post(url + "runs/", {"dataset_version": 1, "config": TINY}, format="json")
    assert r.status_code == 201, r.content
    assert TrainingRun.objects.get(pk=r.json()["id"]).dataset_version == second_v1 and r.json()["dataset_version"] == 1
    r = api(ds).post(url + "runs/", {"dataset_version": second_v1.pk, "config": TINY}, format="json")
    assert r.status_code == 400
    assert r.json()["dataset_version"] == [
        f"This project has no dataset version number {second_v1.pk} (its numbers: 1)."
    ]
    r = api(ds).post(
        url + "sweeps/", {"dataset_version": 1, "base_config": TINY, "space": {"seed": [1, 2]}}, format="json"
    )
    assert r.status_code == 201, r.content
    r = api(ds).post(
        url + "sweeps/", {"dataset_version": 2, "base_config": TINY, "space": {"seed": [1]}}, format="json"
    )
    assert r.status_code == 400 and "no dataset version number 2" in r.json()["dataset_version"][0]
