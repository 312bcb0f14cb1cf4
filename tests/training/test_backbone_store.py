"""The store of backbone weights (page, API, management command), the refusal of a run whose
backbone is missing, the portal's default recipe, and a real defect-finder run on screw photographs
whose saved model answers like its evaluation."""

import io

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from apps.core.models import AuditEvent
from apps.training import backbone_store, services
from apps.training.ml import backbones
from apps.training.models import Artifact, BackboneWeights, TrainingRun
from apps.training.services import checks
from tests.factories import field_errors, make_item, make_version, mark_profiled

pytestmark = pytest.mark.django_db


@pytest.fixture
def site_admin(django_user_model):
    return django_user_model.objects.create_user(
        "root", password="portal-test-pass-42", is_superuser=True, is_staff=True
    )


@pytest.fixture
def lite0_stored():
    call_command("backbone_fetch", "efficientnet_lite0", "--from-package", stdout=io.StringIO())
    return BackboneWeights.objects.get(name="efficientnet_lite0")


def test_the_command_stores_lite0_from_its_package_once(lite0_stored):
    assert lite0_stored.method == "package" and lite0_stored.source_sha256 == backbones.LITE0_PTH_SHA256
    assert default_storage.exists(lite0_stored.blob.path)
    assert AuditEvent.objects.filter(action="backbone.add", object_id=str(lite0_stored.pk)).exists()
    out = io.StringIO()
    call_command("backbone_fetch", "efficientnet_lite0", "--from-package", "--if-missing", stdout=out)
    assert "already in the store" in out.getvalue()


def test_a_file_that_does_not_match_the_catalogue_hash_is_refused_and_nothing_is_stored(tmp_path):
    bogus = tmp_path / "resnet.h5"
    bogus.write_bytes(b"not the weights")
    with pytest.raises(CommandError, match="md5 .* but the catalogue lists 4d473c1dd8becc155b73f8504c6f6626"):
        call_command("backbone_fetch", "resnet50", "--file", str(bogus))
    assert not BackboneWeights.objects.exists()


def test_the_page_shows_the_catalogue_to_everyone_signed_in(people, lite0_stored):
    c = Client()
    c.force_login(people["labeler"])
    r = c.get(reverse("backbones"))
    body = r.content.decode()
    assert r.status_code == 200
    for b in backbones.CATALOGUE.values():
        assert b.title in body and b.hash in body and b.licence in body
    assert backbones.LITE0_PTH_SHA256 in body and "stored" in body
    assert "backbone_fetch resnet50" in body  # how to add a missing one
    assert 'type="file"' not in body  # no upload form for a non-admin
    add = reverse("backbone-add", kwargs={"name": "resnet50"})
    assert c.post(add, {"file": io.BytesIO(b"x")}).status_code == 403
    assert Client().post(add).status_code == 302  # to the login page
    assert Client().get(reverse("backbones")).status_code == 302


def test_a_site_admin_uploads_on_the_page_and_a_wrong_file_says_why(site_admin):
    c = Client()
    c.force_login(site_admin)
    assert 'type="file"' in c.get(reverse("backbones")).content.decode()
    add = lambda name: reverse("backbone-add", kwargs={"name": name})  # noqa: E731
    r = c.post(add("mobilenet_v3_small"), {"file": io.BytesIO(b"nope")})
    assert r.status_code == 400  # the reason sits in the row of the backbone it is about
    row = r.content.decode().split('<code class="small">mobilenet_v3_small</code>')[1].split("</tr>")[0]
    assert "but the catalogue lists d3e8ec802a04aa4fc771ee12a9a9b836" in " ".join(field_errors(row, "file"))
    assert not BackboneWeights.objects.exists()
    assert c.post(add("no_such_net"), {"file": io.BytesIO(b"x")}).status_code == 404
    assert c.get(add("efficientnet_lite0")).status_code == 405
    pth = io.BytesIO(backbones.lite0_pth_from_package())
    pth.name = backbones.LITE0_PTH
    r = c.post(add("efficientnet_lite0"), {"file": pth}, follow=True)
    assert r.status_code == 200 and BackboneWeights.objects.get().added_by == site_admin


def test_the_api_lists_the_catalogue_and_only_a_site_admin_adds_weights(api, people, site_admin):
    rows = api(people["pm"]).get(reverse("api-backbones")).json()
    assert {r["name"] for r in rows} == set(backbones.CATALOGUE) and not any(r["stored"] for r in rows)
    url = reverse("api-backbone-weights", kwargs={"name": "efficientnet_lite0"})
    data = {"file": io.BytesIO(backbones.lite0_pth_from_package())}
    assert api(people["ds"]).post(url, data, format="multipart").status_code == 403
    assert api(site_admin).post(url, {"file": io.BytesIO(b"x")}, format="multipart").status_code == 400
    r = api(site_admin).post(url, {"file": io.BytesIO(backbones.lite0_pth_from_package())}, format="multipart")
    assert r.status_code == 201 and r.json()["sha256"] == backbones.LITE0_PTH_SHA256
    assert (
        api(site_admin)
        .post(reverse("api-backbone-weights", kwargs={"name": "vgg99"}), {"file": io.BytesIO(b"x")}, format="multipart")
        .status_code
        == 400
    )


def test_an_oversized_or_missing_upload_is_refused_before_it_is_read(api, site_admin, monkeypatch):
    monkeypatch.setattr(backbone_store, "MAX_WEIGHTS_BYTES", 10)
    url = reverse("api-backbone-weights", kwargs={"name": "resnet50"})
    r = api(site_admin).post(url, {"file": io.BytesIO(b"x" * 20)}, format="multipart")
    assert r.status_code == 400 and "over the 10 byte limit" in r.content.decode()
    r = api(site_admin).post(url, {}, format="multipart")
    assert r.status_code == 400 and "multipart field 'file'" in r.content.decode()
    assert not BackboneWeights.objects.exists()


def test_a_run_on_a_missing_backbone_is_refused_at_launch_with_how_to_add_it(project, people, version):
    with pytest.raises(ValidationError) as exc:
        services.training_run_create(
            project=project,
            user=people["ds"],
            dataset_version=version,
            config={"architecture": "patch_mil", "backbone": "resnet50"},
        )
    message = " ".join(exc.value.message_dict["backbone"])
    assert "not in the portal's store" in message and "backbone_fetch resnet50" in message
    assert not TrainingRun.objects.exists()


def test_the_default_recipe_is_the_defect_finder_once_its_backbone_is_stored(project, people, version, api):
    assert services.default_recipe(["defect", "good"])["architecture"] == "small_cnn"
    call_command("backbone_fetch", "efficientnet_lite0", "--from-package", stdout=io.StringIO())
    _, config = checks._checked(project, version, {})
    assert config["architecture"] == "patch_auto" and config["backbone"] == "efficientnet_lite0"
    assert config["image_size"] == 1024 and config["crop"] == "object"
    assert services.default_recipe(["a", "b", "c"])["architecture"] == "small_cnn"  # two classes only
    _, config = checks._checked(project, version, {"architecture": "tiny_cnn"})  # a choice is kept
    assert config["architecture"] == "tiny_cnn"
    c = Client()
    c.force_login(people["ds"])
    body = c.get(reverse("training-run-create", args=[project.slug])).content.decode()
    assert 'value="patch_auto" selected' in body  # the form starts with the portal's recipe, all of it
    for name in ("head_ensemble", "head_samples", "search_budget_s", "crop_width"):
        assert f'name="{name}" value="{checks.default_recipe(["defect", "good"]).get(name, 600)}"' in body, name
    # an API launch with no hyperparameters: the run page says which recipe and why
    r = api(people["ds"]).post(
        reverse("api-training-runs", kwargs={"project_slug": project.slug}),
        {"dataset_version": version.number, "config": {}},
        format="json",
    )
    assert r.status_code == 201, r.content
    run = TrainingRun.objects.get(pk=r.json()["id"])
    assert run.config["architecture"] == "patch_auto" and "anomaly detector" in run.config["extra"]["recipe"]
    page = c.get(reverse("training-run", args=[project.slug, run.pk])).content.decode()
    assert 'id="run-recipe"' in page and "0.968" in page


SMALL_AUTO = {
    "architecture": "patch_auto",
    "image_size": 256,
    "crop_width": 256,
    "crop_height": 64,
    "epochs": 2,
    "batch_size": 4,
    "top_k": 3,
    "memory_bank": 64,
}


def screw_version(project, screws):
    """16 screw photographs in a version: 8 train, 4 val, 4 test (both classes in each split)."""
    root, rows = screws
    good = [r for r in rows if r["label"] == "good"][:10]
    bad = [r for r in rows if r["label"] == "defect"][:6]
    plan = (
        [(r, "train") for r in good[:6] + bad[:2]]
        + [(r, "val") for r in good[6:8] + bad[2:4]]
        + [(r, "test") for r in good[8:10] + bad[4:6]]
    )
    entries = [
        (make_item(project, data=(root / r["path"]).read_bytes(), name=r["path"].replace("/", "_")), split, r["label"])
        for r, split in plan
    ]
    version = make_version(project, entries)
    mark_profiled(version)
    return version, entries


def served_as_evaluated(run, version, entries, image_size):
    """The stored model, loaded safely and fed each raw test photograph, answers as the evaluation did."""
    from apps.registry.bundle_runtime import Predictor, load_model_bytes

    art = Artifact.objects.get(run=run, kind="keras")
    with default_storage.open(art.blob.path, "rb") as fh:
        model = load_model_bytes(fh.read(), art.sha256)  # safe_mode: only registered portal layers
    predictor = Predictor(model, classes=version.classes, image_size=image_size, channels=1)
    by_item = {p["item"]: p for p in run.predictions}
    for item, split, _ in entries:
        if split != "test":
            continue
        with default_storage.open(item.blob.path, "rb") as fh:
            served = predictor.predict(fh.read())
        evaluated = by_item[item.pk]
        assert served["class"] == version.classes[evaluated["pred"]]
        np.testing.assert_allclose([served["probabilities"][c] for c in version.classes], evaluated["probs"], atol=1e-4)


def test_a_defect_finder_run_on_screw_photographs_serves_what_it_evaluated(project, people, screws, lite0_stored):
    from apps.datasets.models import VersionItem

    version, entries = screw_version(project, screws)
    # A labeler's box on each defect photograph of the test split (around the middle, where the screw lies).
    for item, split, label in entries:
        if split == "test" and label == "defect":
            box = {"x": item.width * 0.2, "y": item.height * 0.2, "w": item.width * 0.6, "h": item.height * 0.6}
            VersionItem.objects.filter(version=version, item=item).update(regions=[box])
    run = services.training_run_create(
        project=project,
        user=people["ds"],
        dataset_version=version,
        config=SMALL_AUTO,
    )
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error + run.log[-2000:]
    assert "patch features of the train split: 8 images" in run.log
    assert run.epochs_done == run.epochs_total == 4  # the head's 2 epochs, then the from-scratch candidate's 2
    assert "decision_threshold" in run.model_card and run.test_metrics["n"] == 4
    search = run.model_card["recipe_search"]  # four candidates, three on one feature pass, one kept
    assert [c["kind"] for c in search["candidates"]] == ["classifier", "anomaly", "combined", "scratch"]
    assert search["winner"] in ("classifier", "anomaly", "combined", "scratch") and "validation" in search["why"]
    assert search["budget_s"] == 600 and 0 < search["spent_s"] < 600 and "skipped" not in search
    assert "recipe search:" in run.log and "candidate the small CNN from scratch: 128 px" in run.log
    c = Client()
    c.force_login(people["ds"])
    page = c.get(reverse("training-run", args=[project.slug, run.pk])).content.decode()
    assert 'id="recipe-search"' in page and "kept" in page and "Searched within a time budget of 600 s" in page
    # where the model looked: a heatmap per test image, shown on request in the evaluation gallery
    assert all(p.get("heatmap") for p in run.predictions) and "heatmaps of 4 test images drawn" in run.log
    # ...scored against the boxes through the object crop's transform, whichever candidate won
    loc = run.test_metrics["localization"]
    assert loc["images"] == 2 and 0 <= loc["pointing_game"] <= 1 and 0 <= loc["localization_iou"] <= 1
    assert 'id="heat-toggle"' in c.get(reverse("training-run-evaluation", args=[project.slug, run.pk])).content.decode()
    url = reverse("api-training-run-misclassified", kwargs={"project_slug": project.slug, "pk": run.pk})
    first = run.predictions[0]
    cell = {"true": version.classes[first["true"]], "pred": version.classes[first["pred"]]}
    rows = c.get(url, cell).json()
    assert rows and rows[0]["has_heatmap"] and "heatmap_url" not in rows[0]
    rows = c.get(url, {**cell, "heatmaps": "1"}).json()
    import base64

    from PIL import Image

    png = base64.b64decode(rows[0]["heatmap_url"].split(",", 1)[1])
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.size == (384, 96)  # the 256 × 64 crop at 384 px wide
    outsider = Client()
    outsider.force_login(people["outsider"])
    assert outsider.get(url, {**cell, "heatmaps": "1"}).status_code == 404
    served_as_evaluated(run, version, entries, 256)


def test_a_from_scratch_winner_takes_the_raw_photograph_and_serves_what_it_evaluated(
    project, people, screws, lite0_stored, monkeypatch
):
    """Where the search keeps the small CNN from scratch, its model shrinks the run's full-size input
    itself: registry, serving and exports send the same photographs whatever won."""
    from apps.training.ml import search

    real = search.choose
    monkeypatch.setattr(
        search,
        "choose",
        lambda cands, n_val=None: (cands[-1], "forced") if cands[-1]["kind"] == "scratch" else real(cands, n_val),
    )
    version, entries = screw_version(project, screws)
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=SMALL_AUTO)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error + run.log[-2000:]
    found = run.model_card["recipe_search"]
    assert found["winner"] == "scratch" and run.model_card["decision_threshold"] is None
    assert run.test_metrics["n"] == 4 and run.epochs_run == 2  # the kept candidate's own epochs
    # A plain classifier draws no patch map; its Grad-CAM (through the Resizing, into the nested CNN) instead.
    assert all(p.get("heatmap") for p in run.predictions) and "Grad-CAM heatmaps of 4 test images" in run.log
    served_as_evaluated(run, version, entries, 256)


def test_a_search_with_no_budget_left_says_it_did_not_try_from_scratch(project, people, screws, lite0_stored):
    version, entries = screw_version(project, screws)
    config = {**SMALL_AUTO, "epochs": 1, "search_budget_s": 0}
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=config)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error + run.log[-2000:]
    found = run.model_card["recipe_search"]
    assert [c["kind"] for c in found["candidates"]] == ["classifier", "anomaly", "combined"]
    assert found["budget_s"] == 0 and len(found["skipped"]) == 1
    assert found["skipped"][0].startswith("the small CNN from scratch: not tried, the budget is 0 after the patch")
    c = Client()
    c.force_login(people["ds"])
    page = c.get(reverse("training-run", args=[project.slug, run.pk])).content.decode()
    assert "the small CNN from scratch: not tried, the budget is 0" in page


def test_a_bundle_of_the_defect_finder_loads_without_the_portal(tmp_path, project, people, screws, lite0_stored):
    """A bundle's server has only its own files: the portal's layers come from portal_layers.py beside it."""
    import json
    import subprocess
    import sys

    from apps.registry.bundle import LAYERS, RUNTIME
    from apps.training.ml import patch
    from apps.training.ml.config import TrainConfig

    cfg = TrainConfig.from_dict({"architecture": "patch_mil", "image_size": 128, "crop_width": 128, "crop_height": 32})
    weights = backbone_store.weights_to_file("efficientnet_lite0", str(tmp_path))
    ext = patch.extractor(cfg, weights)
    import keras

    from apps.training.ml.layers import PatchDistance, ThresholdedBinary, TopKMean

    head = patch.head(ext.outputs[0].shape[-1], 1, top_k=3, dropout=0, mean=np.zeros(152), std=np.ones(152))
    features = ext.outputs[0]
    distance = PatchDistance(32, 152, name="patch_distance")
    anomaly = TopKMean(1)(distance(features))
    distance.bank.assign(np.random.default_rng(0).normal(size=(32, 152)).astype(np.float32))
    score = keras.layers.Add()([patch.mirrored(head)(features), keras.layers.Rescaling(0.01)(anomaly)])
    model = keras.Model(ext.inputs, ThresholdedBinary(0.25, 0, 3.0, name="probs")(score))
    model.save(tmp_path / "model.keras")
    image = (screws[0] / screws[1][0]["path"]).read_bytes()
    from apps.registry.bundle_runtime import Predictor, sha256_hex

    sha = sha256_hex((tmp_path / "model.keras").read_bytes())
    (tmp_path / "model.json").write_text(
        json.dumps({"classes": ["defect", "good"], "sha256": sha, "input_spec": {"image_size": 128, "channels": 1}})
    )
    (tmp_path / "serve.py").write_text(RUNTIME.read_text())
    (tmp_path / "portal_layers.py").write_text(LAYERS.read_text())
    (tmp_path / "image.png").write_bytes(image)
    here = Predictor(model, classes=["defect", "good"], image_size=128, channels=1).predict(image)
    code = (
        "import json, serve; p = serve.Predictor.from_files('model.keras', 'model.json'); "
        "print(json.dumps(p.predict(open('image.png', 'rb').read())))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert there["class"] == here["class"]
    assert abs(there["probabilities"]["good"] - here["probabilities"]["good"]) < 1e-4


def test_fetch_downloads_through_the_outbound_guard_and_checks_the_hash(settings, monkeypatch):
    """A real HTTP server on loopback stands in for the catalogue's address (the guard allows private
    addresses only when told to); what it serves is checked like any upload."""
    import dataclasses
    import http.server
    import threading

    from apps.training.ml import backbones as catalogue_module

    payload = {"body": b"not the weights"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload["body"])))
            self.end_headers()
            self.wfile.write(payload["body"])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/weights"
        entry = dataclasses.replace(catalogue_module.CATALOGUE["efficientnet_lite0"], url=url)
        monkeypatch.setitem(catalogue_module.CATALOGUE, "efficientnet_lite0", entry)
        with pytest.raises(CommandError, match="could not read|refused|internal"):
            call_command("backbone_fetch", "efficientnet_lite0", stdout=io.StringIO())  # loopback: refused
        settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
        with pytest.raises(CommandError, match="but the catalogue lists"):
            call_command("backbone_fetch", "efficientnet_lite0", stdout=io.StringIO())
        assert not BackboneWeights.objects.exists()
        payload["body"] = backbones.lite0_pth_from_package()
        call_command("backbone_fetch", "efficientnet_lite0", stdout=io.StringIO())
        assert BackboneWeights.objects.get().method == "fetch"
    finally:
        server.shutdown()
