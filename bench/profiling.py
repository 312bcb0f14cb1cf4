"""Profiling speed: a full profile run of the screw images against a plain loop computing the same
statistics, in the same process and the same run.

    PORTAL_SHARED=/work/shared .venv/bin/python bench/profiling.py [--quick]

The profile (apps.profiling.services.profile_run_execute: read each blob through storage, decode,
measure, save ItemStats in batches with progress and heartbeats, then aggregate histograms,
quantiles, duplicates and outliers and run the assertions) is timed against a loop that reads the
same blobs and calls the same ``imagestats.stats_from_bytes`` and nothing else. Both run in this one
process (one worker process). Goal: the profile reaches at least 0.8 of the loop's images/s.
Everything happens in a throwaway database and media folder under a temporary directory.

The figures are images per CPU-second of this process (time.process_time), summed over rounds that
alternate which side goes first: on a shared machine wall-clock time measures the neighbours' load
more than this code. Wall-clock figures are printed beside them; the profile's extra waits on the
database (a commit per progress save) show there and not in CPU time.
"""

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.8


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="120 images, two rounds (well under 5 minutes)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--smoke", action="store_true", help="24 images, one round (seconds; CI runs it)")
    args = ap.parse_args()
    shared = Path(os.environ.get("PORTAL_SHARED", ROOT.parent / "shared"))
    screws = shared / "datasets" / "mvtec-screw"
    if not (screws / "manifest.csv").exists():
        sys.exit(f"screw images not found at {screws} (set PORTAL_SHARED)")

    tmp = Path(tempfile.mkdtemp(prefix="bench-profiling-"))
    for d in ("broker/queue", "broker/processed", "media"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "PORTAL_VAR_DIR": str(tmp),
            "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
            "MEDIA_ROOT": str(tmp / "media"),
            "PORTAL_ENV": "test",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "mlportal.settings",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.core.storage import blob_put, blob_read
    from apps.datasets.models import DatasetVersion, Item, VersionItem
    from apps.profiling import imagestats, services
    from apps.profiling.models import ProfileRun
    from apps.projects.models import Project

    with open(screws / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    n = 24 if args.smoke else 120 if args.quick else len(rows)
    rounds = args.rounds or (1 if args.smoke else 2 if args.quick else 3)
    rows = rows[:: max(1, len(rows) // n)][:n]
    project = Project.objects.create(slug="bench", name="Bench")
    version = DatasetVersion.objects.create(project=project, number=1, status="ready", classes=["defect", "good"])
    entries = []
    for r in rows:
        data = (screws / r["path"]).read_bytes()
        blob = blob_put(data, ext="png", content_type="image/png")
        item = Item.objects.create(
            project=project,
            sha256=blob.sha256,
            blob=blob,
            original_name=r["path"],
            width=1024,
            height=1024,
            mode="L",
            format="PNG",
            bytes=len(data),
        )
        entries.append(VersionItem(version=version, item=item, split=r["source_split"], label=r["label"]))
    VersionItem.objects.bulk_create(entries)
    items = [e.item for e in VersionItem.objects.filter(version=version).select_related("item__blob").order_by("id")]

    def timed(fn):
        w, c = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - w, time.process_time() - c

    def plain_loop():
        for item in items:
            imagestats.stats_from_bytes(blob_read(item.blob))

    def profile():
        run = services.profile_run_start(version=version, user=None)
        dt = timed(lambda: services.profile_run_execute(run_id=run.pk))
        run.refresh_from_db()
        assert run.status == "succeeded" and run.processed == len(items), (run.status, run.error)
        return dt

    loop, prof = [0.0, 0.0], [0.0, 0.0]  # [wall, cpu] summed over rounds
    for i in range(rounds):  # alternate so that neither side always goes first
        order = ("loop", "profile") if i % 2 == 0 else ("profile", "loop")
        got = {}
        for side in order:
            got[side] = timed(plain_loop) if side == "loop" else profile()
        for acc, side in ((loop, "loop"), (prof, "profile")):
            acc[0] += got[side][0]
            acc[1] += got[side][1]
        print(
            f"round {i + 1}: loop {got['loop'][0]:.2f}s wall / {got['loop'][1]:.2f}s cpu, "
            f"profile {got['profile'][0]:.2f}s wall / {got['profile'][1]:.2f}s cpu",
            flush=True,
        )
    n_total = len(items) * rounds
    loop_rate, prof_rate = n_total / loop[1], n_total / prof[1]
    ratio = prof_rate / loop_rate
    print(f"images: {len(items)} (1024x1024 grayscale PNG) x {rounds} rounds")
    print(f"plain loop (same statistics): {loop_rate:.1f} images/cpu-s ({n_total / loop[0]:.1f} images/s wall)")
    print(f"profile run (one process):    {prof_rate:.1f} images/cpu-s ({n_total / prof[0]:.1f} images/s wall)")
    print(f"ratio profile/loop: {ratio:.3f} cpu, {loop[0] / prof[0]:.3f} wall (goal >= {GOAL})")
    print(f"profile runs: {ProfileRun.objects.count()}")
    print(
        f"RESULT profiling profile_images_per_s={prof_rate:.1f} loop_images_per_s={loop_rate:.1f} "
        f"ratio={ratio:.3f} goal={GOAL}"
    )


if __name__ == "__main__":
    main()
