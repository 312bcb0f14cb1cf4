"""The run page in a real browser: epochs drawn as they arrive, the progress bar moving, the log;
the evaluation page's confusion-matrix click showing that cell's images."""

import os

import numpy as np
import pytest
from django.utils import timezone

from apps.training import services
from apps.training.ml.evaluate import classification_metrics
from apps.training.models import EpochMetric, TrainingRun
from tests.factories import PASSWORD
from tests.training.conftest import TINY, make_tiny_version  # noqa: F401  (fixture)

from .conftest import watch

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(live_server, people, page):
    """The conftest page, logged in as a labeler (any member may watch a run)."""
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", "labeler")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.base = live_server.url
    return page


def test_epochs_are_drawn_as_they_arrive(page, project, people, make_tiny_version):
    version = make_tiny_version()
    run = services.training_run_create(
        project=project, user=people["ds"], dataset_version=version, config={**TINY, "epochs": 4}
    )
    now = timezone.now()
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", started_at=now, heartbeat_at=now, batches_per_epoch=2, log="started\n"
    )
    page.goto(f"{page.base}/p/{project.slug}/training/runs/{run.pk}/")
    page.wait_for_selector("#chart-loss .main-svg")
    assert page.locator("#chart-loss .scatterlayer .trace").count() == 0
    for epoch in (1, 2):
        EpochMetric.objects.create(
            run=run,
            epoch=epoch,
            seconds=1.0,
            metrics={"loss": 1.0 / epoch, "accuracy": 0.5 + epoch / 10, "val_loss": 1.2 / epoch, "val_accuracy": 0.5},
        )
    TrainingRun.objects.filter(pk=run.pk).update(epochs_done=2, seconds_per_epoch=1.0, log="started\nepoch 2/4\n")
    page.wait_for_function("document.querySelectorAll('#chart-loss .scatterlayer .trace').length == 2", timeout=10000)
    assert page.locator("#chart-acc .scatterlayer .trace").count() == 2
    page.wait_for_function("document.getElementById('run-progress').style.width == '50%'", timeout=10000)
    assert "epoch 2/4" in page.locator("#run-log").inner_text()
    assert "left" in page.locator("#run-eta").inner_text()


def test_confusion_cell_click_shows_its_images(page, project, people, make_tiny_version):
    version = make_tiny_version()
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=TINY)
    items = list(version.entries.filter(split="test").order_by("item_id").values_list("item_id", flat=True))
    y, probs = np.array([0, 1, 0, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    preds = [
        {"item": i, "true": int(t), "pred": int(p.argmax()), "confidence": float(p.max())}
        for i, t, p in zip(items, y, probs)
    ]
    TrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded", predictions=preds, test_metrics=classification_metrics(y, probs, ["defect", "good"])
    )
    page.goto(f"{page.base}/p/{project.slug}/training/runs/{run.pk}/evaluation/")
    page.wait_for_selector("#gallery figure")
    assert page.locator("#gallery figure").count() == 2  # every misclassified image
    box = page.locator("#chart-cm .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)  # true defect → good
    page.wait_for_function("document.getElementById('gallery-title').textContent.includes('defect → predicted good')")
    page.wait_for_function("document.querySelectorAll('#gallery figure').length == 1")
    assert page.locator("#gallery img").first.evaluate("img => img.complete && img.naturalWidth > 0")


def test_the_run_form_says_how_long_the_run_will_take(live_server, people, browser, project, make_tiny_version):
    version = make_tiny_version()
    ctx = browser.new_context()
    page = watch(ctx.new_page())
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", "ds")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.goto(f"{live_server.url}/p/{project.slug}/training/new/")
    page.wait_for_function("document.getElementById('run-estimate').textContent.startsWith('Expected: about')")
    assert "reference rates" in page.inner_text("#run-estimate")
    page.select_option("select[name=architecture]", "tiny_cnn")
    page.fill("input[name=epochs]", "0")
    page.locator("input[name=epochs]").dispatch_event("change")
    page.wait_for_function("document.getElementById('run-estimate').textContent.startsWith('No estimate')")
    assert errors == [] and version.number == 1
    ctx.close()


def test_the_heatmap_toggle_overlays_where_the_model_looked(page, project, people, make_tiny_version):
    """A real (tiny) training run draws Grad-CAM for every test image; in the browser, a confusion
    cell's images switch to their heatmaps and back with the toggle."""
    version = make_tiny_version()
    run = services.training_run_create(project=project, user=people["ds"], dataset_version=version, config=TINY)
    services.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded" and all(p.get("heatmap") for p in run.predictions), run.log
    t, p = run.predictions[0]["true"], run.predictions[0]["pred"]  # a cell with at least one image
    page.goto(f"{page.base}/p/{project.slug}/training/runs/{run.pk}/evaluation/")
    page.wait_for_selector("#chart-cm .nsewdrag")
    box = page.locator("#chart-cm .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * (p + 0.5) / 2, box["y"] + box["height"] * (t + 0.5) / 2)
    page.wait_for_function("document.querySelectorAll('#gallery figure').length > 0")
    first = page.locator("#gallery img").first
    assert "/thumb" in first.get_attribute("src")
    page.check("#heat-toggle")
    page.wait_for_function("document.querySelector('#gallery img').src.startsWith('data:image/png')", timeout=20000)
    assert first.evaluate("img => img.classList.contains('heatmap')")
    page.wait_for_function(
        "document.querySelector('#gallery img').complete && document.querySelector('#gallery img').naturalWidth > 0",
        timeout=20000,
    )
    page.uncheck("#heat-toggle")
    page.wait_for_function("document.querySelector('#gallery img').src.includes('/thumb')", timeout=20000)
