#!/usr/bin/env python
"""The manager's portfolio at 200 projects beside one project's page, in one run, over HTTP.

    .venv/bin/python bench/portfolio.py [--quick | --smoke]

A throwaway SQLite database holds 200 projects (50 with --quick, 20 with --smoke) of which the
manager is a member, each with an approved scope and its target, items, a ready dataset version, a
succeeded run, a model version in production with its measured accuracy, an open promotion request
and an open alert, and a plan: eight milestones with owners, every fourth project's monitoring
milestone overdue (slipping). ``manage.py runserver`` (DEBUG off) serves them; one keep-alive HTTP connection
with the manager's session asks for ``/portfolio/`` (every project on one page) and for one project's
page ``/p/<slug>/`` alternately; the figures are the medians. Goal: the portfolio at 200 projects
answers in under 500 ms, and within 10× one project's page (it shows 200 projects' worth: the
queries stay a handful, one per kind of row, so what grows is the rows' rendering).
"""

import argparse
import atexit
import datetime as dt
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _throwaway import runserver, session_for, web_env  # noqa: E402

GOAL_RATIO, GOAL_MS = 10.0, 500.0


def setup(n):
    """``n`` projects of the manager's, each in production; returns (session key, one project's slug)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.utils import timezone

    from apps.accounts.models import ProjectMember, Role
    from apps.core.stages import STAGES
    from apps.core.storage import blob_put
    from apps.datasets.models import DatasetVersion, Item
    from apps.monitoring.models import Alert
    from apps.projects.models import Milestone, Project, ProjectPlan, ScopeRevision, ScopeStatus
    from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel
    from apps.training.models import TrainingRun

    manager = get_user_model().objects.create_user("manager", password="x")
    today = timezone.localdate()
    blob = blob_put(b"\x89PNG bench", ext="png", content_type="image/png")
    target = [{"metric": "accuracy", "comparator": ">=", "target": 0.95}]
    for i in range(n):
        p = Project.objects.create(
            slug=f"line-{i:03d}", name=f"Line {i:03d}", measurement=target, scope_status=ScopeStatus.APPROVED
        )
        ProjectMember.objects.create(project=p, user=manager, role=Role.MANAGER)
        ScopeRevision.objects.create(project=p, number=1, data=p.scope_snapshot(), status=ScopeStatus.APPROVED)
        Item.objects.bulk_create(
            [
                Item(
                    project=p, sha256=f"{i:032x}{k:032x}", blob=blob, width=1, height=1, mode="L", format="PNG", bytes=1
                )
                for k in range(20)
            ]
        )
        dv = DatasetVersion.objects.create(project=p, number=1, status="ready", classes=["defect", "good"])
        run = TrainingRun.objects.create(project=p, dataset_version=dv, status="succeeded", config={})
        rm = RegisteredModel.objects.create(project=p, name="screws")
        kw = dict(registered_model=rm, run=run, dataset_version=dv, classes=["defect", "good"])
        ModelVersion.objects.create(number=1, stage="production", metrics={"accuracy": 0.9 + (i % 10) / 100}, **kw)
        v2 = ModelVersion.objects.create(number=2, stage="staging", metrics={"accuracy": 0.97}, **kw)
        PromotionRequest.objects.create(version=v2, requested_by=manager, note="better", gate_passed=i % 3 != 0)
        Alert.objects.create(project=p, title=f"Error rate above 5 % on line {i}", value=0.07, threshold=0.05)
        ProjectPlan.objects.create(project=p, planned_items=400, planned_runs=10)
        Milestone.objects.bulk_create(
            [
                Milestone(
                    project=p,
                    stage=key,
                    owner=manager,
                    planned_start=today + dt.timedelta(days=-20 if late else k * 7 + 1),
                    planned_end=today + dt.timedelta(days=-3 if late else k * 7 + 7),
                )
                for k, (key, _) in enumerate(STAGES)
                for late in [i % 4 == 0 and key == "monitoring"]
            ]
        )
    return session_for(manager), "line-000"


def median_ms(conn, path, cookie, rounds):
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}"})
        resp = conn.getresponse()
        body = resp.read()
        times.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise SystemExit(f"{path}: {resp.status} {body[:200]!r}")
    return statistics.median(times), body


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 projects")
    ap.add_argument("--smoke", action="store_true", help="20 projects, a few requests (CI)")
    args = ap.parse_args()
    n, rounds = (20, 5) if args.smoke else (50, 15) if args.quick else (200, 25)
    tmp = Path(tempfile.mkdtemp(prefix="bench-portfolio-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    web_env(tmp, "portfolio")
    session, slug = setup(n)
    port = int(runserver(tmp).rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    median_ms(conn, "/portfolio/", session, 2)  # warm-up
    median_ms(conn, f"/p/{slug}/", session, 2)
    one, portfolio = [], []
    for _ in range(3):  # alternate, so both see the same machine
        one.append(median_ms(conn, f"/p/{slug}/", session, rounds)[0])
        ms, body = median_ms(conn, "/portfolio/", session, rounds)
        portfolio.append(ms)
    rows = body.decode().count("data-project=")
    if rows != n:
        raise SystemExit(f"the portfolio listed {rows} projects, not {n}")
    slipping = body.decode().count('class="badge slipping"')
    if slipping != (n + 3) // 4:
        raise SystemExit(f"the portfolio flagged {slipping} slipping milestones, not {(n + 3) // 4}")
    p, o = statistics.median(portfolio), statistics.median(one)
    print(f"{n} projects, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"one project's page /p/{slug}/: median {o:.1f} ms; the portfolio with {rows} rows: median {p:.1f} ms")
    print(
        f"RESULT portfolio portfolio_ms={p:.1f} one_project_page_ms={o:.1f} ratio={p / o:.2f} goal=<={GOAL_RATIO}&<{GOAL_MS}ms"
    )


if __name__ == "__main__":
    main()
