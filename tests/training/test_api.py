"""Every training API endpoint: a member with the role, a member without it (403), an outsider (404)."""
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.datasets.storage import blob_put
from apps.training.ml.evaluate import classification_metrics
from apps.training.models import Artifact, TrainingRun
from apps.training import services

from .conftest import TINY

pytestmark = pytest.mark.django_db
BASE = "/api/v1/projects/{slug}/training/"


@pytest.fixture
def finished_run(project, people, version):
    """A succeeded run written directly (no training): metrics, predictions and one artifact."""
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=TINY)
    test_items = list(version.entries.filter(split="test").order_by("item_id").values_list("item_id", flat=True))
    y = np.array([0, 1, 0, 1])
    probs = np.array([[.9, .1], [.2, .8], [.3, .7], [.6, .4]])
    metrics = classification_metrics(y, probs, ["defect", "good"])
    preds = [{"item": i, "true": int(t), "pred": int(p.argmax()), "confidence": float(p.max()), "probs": p.tolist()}
             for i, t, p in zip(test_items, y, probs)]
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", test_metrics=metrics, predictions=preds,
                                                 best_val={"val_accuracy": 0.75}, training_seconds=1.5)
    blob = blob_put(b'{"card": 1}', ext="json", content_type="application/json")
    Artifact.objects.create(run=run, kind="model_card", blob=blob, sha256=blob.sha256, size=blob.size,
                            filename="model_card.json")
    run.refresh_from_db()
    return run


def endpoints(project, version, run, sweep_id):
    b = BASE.format(slug=project.slug)
    wrong = next(p["item"] for p in run.predictions if p["true"] != p["pred"])
    return [
        # (method, url, data, read-only?, ok status)
        ("get", b + "runs/", None, True, 200),
        ("post", b + "runs/", {"dataset_version": version.pk, "config": TINY}, False, 201),
        ("get", b + f"runs/{run.pk}/", None, True, 200),
        ("get", b + f"runs/{run.pk}/live/", None, True, 200),
        ("get", b + f"runs/{run.pk}/artifacts/model_card/", None, True, 200),
        ("get", b + f"runs/{run.pk}/misclassified/", None, True, 200),
        ("post", b + f"runs/{run.pk}/misclassified/", {"items": [wrong]}, False, 200),
        ("post", b + f"runs/{run.pk}/rerun/", None, False, 201),
        ("get", b + "sweeps/", None, True, 200),
        ("post", b + "sweeps/", {"dataset_version": version.pk, "base_config": TINY, "space": {"seed": [1, 2]}},
         False, 201),
        ("get", b + f"sweeps/{sweep_id}/", None, True, 200),
        ("post", b + f"sweeps/{sweep_id}/cancel/", None, False, 200),
    ]


@pytest.fixture
def sweep_id(project, people, version):
    return services.sweep_create(project=project, user=people["ds"], dataset_version=version, base_config=TINY,
                                 space={"seed": [3]}).pk


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
    r = api(people["ds"]).post(url, {"dataset_version": building.pk, "config": TINY}, format="json")
    assert r.status_code == 400 and "not ready" in str(r.json()["dataset_version"])
    ready = make_tiny_version()
    r = api(people["ds"]).post(url, {"dataset_version": ready.pk, "config": {**TINY, "learning_rate": 2}}, format="json")
    assert r.status_code == 400 and "between" in r.json()["learning_rate"][0]
    r = api(people["ds"]).post(url, {"dataset_version": ready.pk, "config": "{oops"}, format="multipart")
    assert r.status_code == 400 and "valid JSON" in str(r.json()["config"])
    assert not TrainingRun.objects.exists()


def test_finetune_upload_over_the_api(project, people, version, api, tmp_path):
    import json

    from apps.training.ml import builders
    from apps.training.ml.config import TrainConfig

    path = tmp_path / "m.keras"
    builders.build_model(TrainConfig(architecture="tiny_cnn", image_size=32), 3).save(path)
    r = api(people["ds"]).post(BASE.format(slug=project.slug) + "runs/", {
        "dataset_version": version.pk, "config": json.dumps({**TINY, "architecture": "finetune"}),
        "base_model": SimpleUploadedFile("m.keras", path.read_bytes())}, format="multipart")
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
