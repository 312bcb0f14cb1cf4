#!/usr/bin/env python
"""Chart pages on a first visit: how long a new browser (empty cache) takes to load each page that
draws Plotly charts, served the way ``make run`` serves them (``runserver`` with DEBUG off, static
files collected by the compressed storage and served by whitenoise), on loopback.

    .venv/bin/python bench/pages.py [--quick | --smoke]

Each page is opened in a fresh Chromium context (no cache) after a session cookie is set; the time
is from navigation start to the page's load event plus its charts drawn (every chart container holds
an SVG). The reference, in the same run and the same server: a bare page that loads the same
plotly-cartesian.min.js and draws one empty chart, i.e. the library's own first-visit cost. The RESULT figure is
the slowest chart page's median; the goal is under 1,000 ms. Figures are medians over the rounds.
"""

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _throwaway import runserver, web_env  # noqa: E402

GOAL_MS = 1000
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
BARE = """<!doctype html><html><head><meta charset="utf-8"><title>bare</title>
<script src="/static/vendor/plotly-cartesian.min.js"></script></head><body><div id="c"></div>
<script>Plotly.newPlot("c", [{type: "scatter", x: [1, 2], y: [1, 2]}], {height: 260});</script></body></html>"""


def setup(tmp):
    """A project with a finished run (metrics, epochs), a registered version and a few predictions."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    from django.conf import settings

    (Path(settings.STATIC_ROOT) / "bench-bare.html").write_text(BARE)
    import numpy as np

    from apps.accounts.models import ProjectMember, Role
    from apps.projects.models import Project
    from apps.registry.models import ModelVersion, RegisteredModel
    from apps.training.ml.evaluate import classification_metrics
    from apps.training.models import EpochMetric, TrainingRun
    from tests.factories import label_classes, make_item, make_version, png_bytes

    project = Project.objects.create(slug="pages", name="Pages")
    user = get_user_model().objects.create_user(username="viewer", password=uuid.uuid4().hex)
    for role in Role.values:
        ProjectMember.objects.create(project=project, user=user, role=role)
    label_classes(project)
    items = [make_item(project, png_bytes(seed=i)) for i in range(12)]
    dv = make_version(
        project, [(it, ("train", "val", "test")[i % 3], ("good", "defect")[i % 2]) for i, it in enumerate(items)]
    )
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    probs = np.clip(np.stack([1 - y, y], 1) * 0.7 + rng.random((200, 2)) * 0.3, 0, 1)
    metrics = classification_metrics(y, probs / probs.sum(1, keepdims=True), ["defect", "good"])
    runs = []
    for k in range(2):
        run = TrainingRun.objects.create(
            project=project,
            dataset_version=dv,
            status="succeeded",
            created_by=user,
            config={"architecture": "small_cnn", "learning_rate": 10 ** -(2 + k), "image_size": 128, "epochs": 20},
            test_metrics=metrics,
            best_val={"val_accuracy": 0.9},
        )
        EpochMetric.objects.bulk_create(
            [
                EpochMetric(
                    run=run,
                    epoch=e,
                    metrics={"loss": 1 / e, "val_loss": 1.1 / e, "accuracy": 1 - 0.5 / e, "val_accuracy": 1 - 0.6 / e},
                )
                for e in range(1, 21)
            ]
        )
        runs.append(run)
    rm = RegisteredModel.objects.create(project=project, name="screws")
    mv = ModelVersion.objects.create(
        registered_model=rm,
        number=1,
        run=runs[0],
        dataset_version=dv,
        classes=["defect", "good"],
        input_spec={"image_size": 128, "channels": 1},
        metrics={k: v for k, v in metrics.items() if k != "curves"},
    )
    from django.test import Client

    c = Client()
    c.force_login(user)
    base = f"/p/{project.slug}"
    pages = {
        "monitoring": f"{base}/monitoring/",
        "evaluation": f"{base}/training/runs/{runs[0].pk}/evaluation/",
        "run": f"{base}/training/runs/{runs[0].pk}/",
        "version": f"{base}/registry/models/{rm.pk}/versions/1/",
        "compare": f"{base}/training/compare/?runs={runs[0].pk}&runs={runs[1].pk}",
    }
    return c.cookies["sessionid"].value, pages, mv


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--shots", default="", help="a folder to save one full-page screenshot of each page into")
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.smoke else 5 if args.quick else 9)
    if not Path(CHROMIUM).exists():
        print(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium); nothing measured.")
        print(f"RESULT pages slowest_chart_page_ms=nan bare_plotly_page_ms=nan ratio=nan goal=<{GOAL_MS}ms")
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    web_env(tmp, "pages")
    session, pages, _ = setup(tmp)
    base = runserver(tmp)
    raw = len(urllib.request.urlopen(base + "/static/vendor/plotly-cartesian.min.js").read())
    req = urllib.request.Request(base + "/static/vendor/plotly-cartesian.min.js", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req) as r:
        gz, encoding = len(r.read()), r.headers.get("Content-Encoding")
    print(
        f"plotly-cartesian.min.js: {raw / 1e6:.2f} MB raw, {gz / 1e6:.2f} MB as served ({encoding or 'identity'}); "
        f"load {os.getloadavg()[0]:.2f}"
    )

    from playwright.sync_api import sync_playwright

    times = {name: [] for name in ["bare"] + list(pages)}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for _ in range(rounds):
            for name in times:
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                ctx.add_cookies([{"name": "sessionid", "value": session, "url": base}])
                page = ctx.new_page()
                url = base + ("/static/bench-bare.html" if name == "bare" else pages[name])
                page.goto(url, wait_until="load")
                page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')]
                                             .every(el => el.querySelector('.main-svg'))""")
                ms = page.evaluate("performance.now()")  # from navigation start to charts drawn
                times[name].append(ms)
                if args.shots and len(times[name]) == 1:
                    Path(args.shots).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(Path(args.shots) / f"{name}.png"), full_page=True)
                ctx.close()
        browser.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"  {k:<11} median {v:7.1f} ms  (rounds: {', '.join(f'{x:.0f}' for x in times[k])})")
    worst = max((k for k in med if k != "bare"), key=med.get)
    print(f"slowest chart page: {worst}; load {os.getloadavg()[0]:.2f}")
    print(
        f"RESULT pages slowest_chart_page_ms={med[worst]:.1f} bare_plotly_page_ms={med['bare']:.1f} "
        f"ratio={med[worst] / med['bare']:.2f} goal=<{GOAL_MS}ms"
    )


if __name__ == "__main__":
    main()
