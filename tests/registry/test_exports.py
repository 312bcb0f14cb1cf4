"""Exports: registering a version queues an ONNX export; the worker converts the real Keras model,
stores the file by sha256 on the version, and measures parity with onnxruntime on the test split."""
import pytest

from apps.registry.exports import export_execute
from apps.registry.models import ExportRun
from apps.registry.artifacts import artifact_bytes

from .conftest import make_run

pytestmark = pytest.mark.django_db


def test_registration_queues_an_onnx_export_that_agrees_with_keras(project, dv, register, good_run, people, client):
    v = register(good_run)
    run = ExportRun.objects.get(version=v)
    assert (run.kind, run.status) == ("onnx", "queued")  # the registration did not wait for it
    done = export_execute(export_id=run.pk)
    assert done.status == "succeeded", done.error
    p = done.parity
    assert p["n"] == 6 and p["agreement"] == 1.0 and p["max_abs_diff"] < 1e-4 and p["runtime"].startswith("onnxruntime")
    assert p["accuracy"] == p["keras_accuracy"]
    v.refresh_from_db()
    data = artifact_bytes(v, "onnx")  # stored by sha256 like every artifact, checked when read
    assert data[:2] and len(data) == v.artifacts["onnx"]["size"]
    assert export_execute(export_id=run.pk) is None  # a redelivered message does nothing
    client.force_login(people["labeler"])
    html = client.get(f"/p/{project.slug}/registry/models/{v.registered_model_id}/versions/{v.number}/").content.decode()
    assert 'data-export="onnx"' in html and "same class on 100% of 6 images" in html and "model.onnx" in html
    r = client.get(f"/api/v1/projects/{project.slug}/training/runs/{v.run_id}/artifacts/onnx/")
    assert r.status_code == 200


def test_a_failed_export_is_reported_and_leaves_the_version_alone(project, dv, register, people, monkeypatch):
    from apps.registry import exports

    v = register(make_run(project, dv, "good"))
    keras_before = dict(v.artifacts)
    monkeypatch.setattr(exports, "onnx_bytes", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("op not supported")))
    done = export_execute(export_id=ExportRun.objects.get(version=v).pk)
    assert done.status == "failed" and "op not supported" in done.error
    v.refresh_from_db()
    assert v.artifacts == keras_before and "onnx" not in v.artifacts
