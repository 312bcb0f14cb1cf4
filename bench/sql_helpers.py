#!/usr/bin/env python
"""Why apps/core/sql.py may use the ORM's internals: ``sql.objects`` (instances from a plain SELECT,
each value through the ORM's own converters, found with ``Field.get_col`` and
``connection.ops.get_db_converters``) against what the public API offers for the same statement.

    .venv/bin/python bench/sql_helpers.py [--quick|--smoke]

The statement is the labeling queue's first, on every "next item" (apps/labeling/services/queue.py):
a project's labeling settings with one computed column (whether items arrived since the queue was
last synced), one row, on a throwaway SQLite database with 20,000 items. Timed per call, in this
process, with the same connection:

- ``sql.objects`` (the figure);
- ``Model.objects.raw`` (the reference: the public API for a plain SELECT into instances);
- the ORM query a user would write (``filter`` + ``annotate(Exists(...))`` + ``first``);
- the database driver alone (``cursor.execute`` + ``fetchall``: the floor).

The last line is the RESULT line: sql.objects against objects.raw, goal ≤ 0.6 (the internals stay
only while they save at least 40 % of the public way's cost on the labeling hot path's lookups).
"""

import argparse
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.6


def per_call_us(fn, rounds, repeats=5):
    """The median over ``repeats`` of the mean microseconds of ``rounds`` calls."""
    fn()  # warm
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(rounds):
            fn()
        out.append((time.perf_counter() - t) / rounds * 1e6)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer rounds")
    ap.add_argument("--smoke", action="store_true", help="a few hundred rounds (seconds; CI runs it)")
    args = ap.parse_args()
    rounds = 200 if args.smoke else 2000 if args.quick else 10000

    sys.path.insert(0, str(ROOT))
    from bench._throwaway import django_in_tmp

    django_in_tmp("bench-sql-")

    from django.db import connection
    from django.db.models import Exists, OuterRef

    from apps.core import sql
    from apps.core.storage import blob_put
    from apps.datasets.models import Item
    from apps.labeling.models import LabelingSettings
    from apps.projects.models import Project
    from tests.factories import png_bytes

    project = Project.objects.create(slug="bench", name="Bench")
    blob = blob_put(png_bytes(size=(8, 8)), ext="png", content_type="image/png")
    Item.objects.bulk_create(
        [
            Item(
                project=project,
                sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                blob=blob,
                original_name=f"s{i}.png",
                width=8,
                height=8,
                mode="L",
                format="PNG",
                bytes=100,
            )
            for i in range(20_000)
        ],
        batch_size=5000,
    )
    last = Item.objects.filter(project=project).order_by("-id").values_list("id", flat=True).first()
    LabelingSettings.objects.create(project=project, synced_item_id=last)

    s, i = LabelingSettings._meta.db_table, Item._meta.db_table
    query = (
        f"SELECT s.*, EXISTS (SELECT 1 FROM {i} i WHERE i.project_id = s.project_id AND i.id > s.synced_item_id) "
        f"AS has_new FROM {s} s WHERE s.project_id = %s"
    )
    params = [project.pk]

    def helper():
        return sql.objects(LabelingSettings, query, params)[0]

    def raw():
        return list(LabelingSettings.objects.raw(query, params))[0]

    def orm():
        newer = Item.objects.filter(project_id=OuterRef("project_id"), id__gt=OuterRef("synced_item_id"))
        return LabelingSettings.objects.filter(project_id=project.pk).annotate(has_new=Exists(newer)).first()

    def driver():
        with connection.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    a, b, c = helper(), raw(), orm()
    for name in ("id", "project_id", "overlap", "overlap_share", "lease_seconds", "regions_enabled", "synced_item_id"):
        assert getattr(a, name) == getattr(b, name) == getattr(c, name), name
    assert bool(a.has_new) == bool(b.has_new) == bool(c.has_new) is False

    times = {
        name: per_call_us(fn, rounds)
        for name, fn in (("driver", driver), ("objects", helper), ("raw", raw), ("orm", orm))
    }
    load = os.getloadavg()[0]
    print(f"one-row lookup with a computed column, {rounds} calls × 5, SQLite, load {load:.2f}:")
    for name, label in (
        ("driver", "database driver alone (floor)"),
        ("objects", "sql.objects (the portal's helper)"),
        ("raw", "Model.objects.raw (public API)"),
        ("orm", "ORM filter + annotate(Exists) + first"),
    ):
        print(f"  {label:42s} {times[name]:8.1f} µs")
    ratio = times["objects"] / times["raw"]
    print(
        f"RESULT sql_helpers objects_us={times['objects']:.1f} raw_us={times['raw']:.1f} "
        f"ratio={ratio:.3f} goal=<={GOAL}"
    )


if __name__ == "__main__":
    main()
