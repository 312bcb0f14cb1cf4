"""Monitoring page speed: the dashboard's server time for a project with 10,000 logged predictions
against one with 1,000,000, in the same throwaway database and the same run.

    PORTAL_SHARED=/work/shared .venv/bin/python bench/monitoring.py [--quick]

Both projects' predictions are spread over the last 24 hours (the page's default range). The raw
PredictionLog rows are bulk-inserted (executemany), and their per-minute rollups are built with the
same ``rollups.aggregate_predictions`` the ``predictions_logged`` handler uses, then bulk-inserted.
The page is requested through Django's test client (URL routing, the view, its selectors and the
template: everything but the network), alternating between the two projects; the figure is the
median of the rounds. Goal: the 1M page within 1.5x of the 10k page and under 300 ms.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO, GOAL_MS = 1.5, 300


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer page rounds (the 1M rows are still written)")
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--smoke", action="store_true", help="1,000 vs 10,000 rows, 3 rounds (seconds; CI runs it)")
    args = ap.parse_args()
    if args.smoke:
        args.small, args.large, args.quick = 1_000, 10_000, True
    tmp = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    for d in ("broker/queue", "broker/processed", "broker/control", "media"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "PORTAL_VAR_DIR": str(tmp),
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
            "MEDIA_ROOT": str(tmp / "media"),
            "PORTAL_ENV": "test",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "mlportal.settings",
            "ALLOWED_HOSTS": "*",
        }
    )
    sys.path.insert(0, str(ROOT))
    import warnings

    warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic in a bench
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from apps.accounts.models import ProjectMember, Role
    from apps.datasets.models import DatasetVersion
    from apps.monitoring.models import PredictionRollup
    from apps.monitoring.rollups import _merge_into, aggregate_predictions
    from apps.projects.models import Project
    from apps.registry.models import ModelVersion, RegisteredModel
    from apps.serving.models import PredictionLog
    from apps.training.models import TrainingRun

    user = get_user_model().objects.create_user("bench", password="x")
    now = timezone.now()
    rng = random.Random(0)
    stats_variants = [
        json.dumps(
            {
                "width": 1024,
                "height": 1024,
                "brightness": rng.gauss(120, 5),
                "contrast": rng.gauss(40, 3),
                "sharpness": rng.lognormvariate(4, 0.3),
                "entropy": rng.gauss(6, 0.2),
            }
        )
        for _ in range(64)
    ]

    def setup(slug, n):
        project = Project.objects.create(slug=slug, name=slug)
        ProjectMember.objects.create(project=project, user=user, role=Role.MANAGER)
        dv = DatasetVersion.objects.create(project=project, number=1, status="ready", classes=["defect", "good"])
        run = TrainingRun.objects.create(project=project, dataset_version=dv, status="succeeded")
        rm = RegisteredModel.objects.create(project=project, name="screws")
        mv = ModelVersion.objects.create(
            registered_model=rm, number=1, run=run, dataset_version=dv, stage="production", classes=["defect", "good"]
        )
        started = time.perf_counter()
        table = PredictionLog._meta.db_table
        cols = (
            "project_id",
            "registered_model_id",
            "model_version_id",
            "created_at",
            "request_id",
            "route",
            "latency_ms",
            "input_sha256",
            "input_stats",
            "predicted_class",
            "confidence",
            "probabilities",
            "embedding",
            "batch_index",
        )
        sql = f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({", ".join(["%s"] * len(cols))})'
        chunk = 50_000
        span = 24 * 3600 - 120
        acc = {}
        for lo in range(0, n, chunk):
            logs, params = [], []
            for i in range(lo, min(n, lo + chunk)):
                at = now - timedelta(seconds=60 + span * i / n)
                conf = rng.random() ** 0.3
                cls = "good" if rng.random() < 0.8 else "defect"
                lat = rng.lognormvariate(3, 0.4)
                st = stats_variants[i % 64]
                params.append(
                    (
                        project.pk,
                        rm.pk,
                        mv.pk,
                        at.isoformat(sep=" "),
                        uuid.uuid4().hex,
                        "production",
                        lat,
                        "0" * 64,
                        st,
                        cls,
                        conf,
                        "{}",
                        "[]",
                        0,
                    )
                )
                logs.append(
                    SimpleNamespace(
                        project_id=project.pk,
                        model_version_id=mv.pk,
                        created_at=at,
                        latency_ms=lat,
                        confidence=conf,
                        predicted_class=cls,
                        input_stats=json.loads(st),
                    )
                )
            with transaction.atomic(), connection.cursor() as cur:
                cur.executemany(sql, params)
            for key, fields in aggregate_predictions(logs).items():
                if key in acc:  # a minute split across two chunks: merged as the live handler merges
                    row = SimpleNamespace(**acc[key])
                    _merge_into(row, fields)
                    acc[key] = vars(row)
                else:
                    acc[key] = fields
        PredictionRollup.objects.bulk_create(
            [
                PredictionRollup(project_id=p, model_version_id=v, minute=m, **fields)
                for (p, v, m), fields in acc.items()
            ],
            batch_size=2000,
        )
        return project, time.perf_counter() - started

    small, t_small = setup("small", args.small)
    large, t_large = setup("large", args.large)
    print(
        f"inserted {args.small:,} predictions in {t_small:.1f}s and {args.large:,} in {t_large:.1f}s; rollup rows: "
        f"{PredictionRollup.objects.filter(project=small).count()} vs {PredictionRollup.objects.filter(project=large).count()}"
    )
    print(
        f"raw log rows: {PredictionLog.objects.filter(project=small).count():,} vs "
        f"{PredictionLog.objects.filter(project=large).count():,}"
    )

    client = Client()
    client.force_login(user)

    def page(project):
        started = time.perf_counter()
        r = client.get(f"/p/{project.slug}/monitoring/")
        assert r.status_code == 200, r.status_code
        return (time.perf_counter() - started) * 1000

    page(small), page(large)  # warm: templates, imports
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        cProfile.runctx("page(large)", globals(), locals(), "/tmp/mon.prof")
        pstats.Stats("/tmp/mon.prof").sort_stats("cumulative").print_stats(35)
    rounds = 3 if args.smoke else 5 if args.quick else 15
    ts, tl = [], []
    for i in range(rounds):
        order = (small, large) if i % 2 == 0 else (large, small)
        for p in order:
            (ts if p is small else tl).append(page(p))
    ms_small, ms_large = statistics.median(ts), statistics.median(tl)
    print(f"{'':24}{args.small:>10,}{args.large:>10,}")
    print(f"{'page server time (ms)':24}{ms_small:>10.1f}{ms_large:>10.1f}   (median of {rounds} rounds)")
    print(f"{'min / max (ms)':24}{min(ts):>5.0f}/{max(ts):<5.0f}{min(tl):>5.0f}/{max(tl):<5.0f}")
    ratio = ms_large / ms_small
    print(
        f"ratio {args.large:,}/{args.small:,} = {ratio:.2f} (goal <= {GOAL_RATIO}); {args.large:,} page {ms_large:.0f} ms "
        f"(goal < {GOAL_MS} ms)"
    )
    print(
        f"RESULT monitoring_page page_ms_1m={ms_large:.1f} page_ms_10k={ms_small:.1f} ratio={ratio:.3f} "
        f"goal=ratio<={GOAL_RATIO}&page_ms_1m<{GOAL_MS}"
    )


if __name__ == "__main__":
    main()
