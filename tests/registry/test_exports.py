"""Exports: registering a version queues ONNX, LiteRT float32 and LiteRT int8 exports; the worker
converts the real Keras model, stores each file by sha256 on the version, and measures parity with
the format's own runtime (onnxruntime, the LiteRT interpreter) on the test split."""

import pytest

from apps.registry.artifacts import artifact_bytes
from apps.registry.exports import export_execute
from apps.registry.models import ExportRun

from .conftest import make_run

pytestmark = pytest.mark.django_db


def test_registration_queues_an_onnx_export_that_agrees_with_keras(project, dv, register, good_run, people, client):
    v = register(good_run)
    assert sorted(ExportRun.objects.filter(version=v).values_list("kind", "status")) == [
        ("litert_f32", "queued"),
        ("litert_int8", "queued"),
        ("onnx", "queued"),
    ]  # the registration did not wait
    run = ExportRun.objects.get(version=v, kind="onnx")
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
    html = client.get(
        f"/p/{project.slug}/registry/models/{v.registered_model_id}/versions/{v.number}/"
    ).content.decode()
    assert 'data-export="onnx"' in html and "same class on 100% of 6 images" in html and "model.onnx" in html
    r = client.get(f"/api/v1/projects/{project.slug}/training/runs/{v.run_id}/artifacts/onnx/")
    assert r.status_code == 200


def test_a_failed_export_is_reported_and_leaves_the_version_alone(project, dv, register, people, monkeypatch):
    from apps.registry import exports

    v = register(make_run(project, dv, "good"))
    keras_before = dict(v.artifacts)
    monkeypatch.setattr(exports, "onnx_bytes", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("op not supported")))
    done = export_execute(export_id=ExportRun.objects.get(version=v, kind="onnx").pk)
    assert done.status == "failed" and "op not supported" in done.error
    v.refresh_from_db()
    assert v.artifacts == keras_before and "onnx" not in v.artifacts


def test_litert_exports_float32_and_int8_with_their_parity(project, dv, register, good_run, people, client):
    v = register(good_run)
    f32 = export_execute(export_id=ExportRun.objects.get(version=v, kind="litert_f32").pk)
    assert f32.status == "succeeded", f32.error
    p = f32.parity
    assert p["n"] == 6 and p["agreement"] == 1.0 and p["max_abs_diff"] < 1e-4
    assert p["runtime"].startswith("ai-edge-litert") and p["accuracy_drop"] == 0
    int8 = export_execute(export_id=ExportRun.objects.get(version=v, kind="litert_int8").pk)
    assert int8.status == "succeeded", int8.error
    q = int8.parity  # full-integer: close, not equal; calibrated on the training split
    assert q["n"] == 6 and 0 < q["max_abs_diff"] < 0.2 and q["agreement"] >= 5 / 6
    assert q["accuracy_drop"] == q["keras_accuracy"] - q["accuracy"]
    v.refresh_from_db()
    small, smaller = artifact_bytes(v, "litert_f32"), artifact_bytes(v, "litert_int8")
    assert small[4:8] == smaller[4:8] == b"TFL3" and v.artifacts["litert_int8"]["filename"] == "model_int8.tflite"
    client.force_login(people["labeler"])
    html = client.get(
        f"/p/{project.slug}/registry/models/{v.registered_model_id}/versions/{v.number}/"
    ).content.decode()
    assert 'data-export="litert_int8"' in html and "LiteRT (int8, full integer)" in html and "model_f32.tflite" in html
    assert (
        client.get(f"/api/v1/projects/{project.slug}/training/runs/{v.run_id}/artifacts/litert_int8/").status_code
        == 200
    )


def test_the_model_card_has_the_usual_sections_with_intervals_and_exports(
    project, dv, register, good_run, people, client
):
    import io
    import zipfile

    from apps.registry.bundle import bundle_bytes
    from apps.registry.card import card_markdown, wilson

    v = register(good_run)
    export_execute(export_id=ExportRun.objects.get(version=v, kind="litert_f32").pk)
    md = card_markdown(v)
    for section in (
        "## Model details",
        "## Intended use",
        "## Out-of-scope use",
        "## Training data",
        "## Evaluation data",
        "## Metrics",
        "## Per-class results",
        "## Exports",
        "## Caveats",
    ):
        assert section in md, section
    n = v.metrics["n"]
    lo, hi = wilson(round(v.metrics["accuracy"] * n), n)
    assert f"95 % CI {lo:.3f}–{hi:.3f}, n = {n}" in md
    assert "| LiteRT (float32) | succeeded | same class on 100.0% of 6 images" in md
    assert "| ONNX (float32) | queued |" in md
    with zipfile.ZipFile(io.BytesIO(bundle_bytes(v))) as zf:
        assert zf.read("MODEL_CARD.md").decode() == card_markdown(v)
    client.force_login(people["labeler"])
    html = client.get(
        f"/p/{project.slug}/registry/models/{v.registered_model_id}/versions/{v.number}/"
    ).content.decode()
    assert 'id="model-card"' in html and "## Per-class results" in html


def test_wilson_interval():
    from apps.registry.card import wilson

    lo, hi = wilson(54, 72)
    assert abs(lo - 0.6384) < 1e-3 and abs(hi - 0.8359) < 1e-3
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 10)[0] == 0.0 and wilson(0, 0) is None


def client_for_page(client, user):
    client.force_login(user)
    return client


def test_a_manager_can_make_the_gate_ask_the_exports_to_agree(project, dv, register, good_run, people, api, client):
    from apps.registry import gate

    v = register(good_run)
    assert not any("Exports agree" in c["title"] for c in gate.gate_run(v)["checks"])  # off by default
    url = f"/api/v1/projects/{project.slug}/registry/settings/"
    assert api(people["ds"]).patch(url, {"require_export_parity": True}, format="json").status_code == 403
    r = api(people["manager"]).patch(url, {"require_export_parity": "yes"}, format="json")
    assert r.status_code == 400 and "true or false" in r.content.decode()
    r = api(people["manager"]).patch(url, {"require_export_parity": True}, format="json")
    assert r.status_code == 200 and r.json()["require_export_parity"] is True

    def exports_check():
        return next(c for c in gate.gate_run(v)["checks"] if "Exports agree" in c["title"])

    check = exports_check()
    assert check["status"] == "fail" and "ONNX (float32) is still queued" in check["message"]
    ExportRun.objects.filter(version=v).update(status="succeeded", parity={"n": 6, "agreement": 1.0})
    assert exports_check()["status"] == "pass"
    ExportRun.objects.filter(version=v, kind="litert_int8").update(parity={"n": 100, "agreement": 0.98})
    check = exports_check()
    assert check["status"] == "fail" and "LiteRT (int8, full integer) agrees on 98.0% of 100 images" in check["message"]
    ExportRun.objects.filter(version=v, kind="onnx").update(status="failed", error="op not supported")
    assert "ONNX (float32) failed: op not supported" in exports_check()["message"]
    html = (
        client_for_page(client, people["labeler"])
        .get(f"/p/{project.slug}/registry/models/{v.registered_model_id}/versions/{v.number}/")
        .content.decode()
    )
    assert "disagrees with Keras on 2% of the test split" in html and "op not supported" in html
    # the settings page: managers switch it off again
    client.force_login(people["manager"])
    client.post(
        f"/p/{project.slug}/registry/settings/",
        {"form": "settings", "required_approvals": "1", "champion_margin": "0", "champion_metric": "accuracy"},
    )
    assert not gate.settings_for(project).require_export_parity
