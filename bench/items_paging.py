#!/usr/bin/env python
"""Item grid paging at 100,000 items: a page deep in the list costs what the first page costs.

    .venv/bin/python bench/items_paging.py [--quick]

Builds 100,000 items (20,000 with --quick) in a fresh SQLite database in a temporary directory,
half of them labeled, and times ``selectors.items_page`` (seek pagination on the (project, id)
index: no COUNT, no OFFSET) for the first page and for the last page, with and without filters.
For contrast it also times what Django's Paginator would do for that last page (COUNT(*) +
OFFSET). The RESULT figure is the deepest seek page, the reference the first page; ratio ≈ 1
means the cost does not grow with depth.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 2.0


def timed(fn, repeat=7):
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20,000 items instead of 100,000")
    ap.add_argument("--smoke", action="store_true", help="2,000 items (seconds; CI runs it)")
    args = ap.parse_args()
    n = 2_000 if args.smoke else 20_000 if args.quick else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="bench-paging-"))
    try:
        os.environ.update(
            {
                "PORTAL_ENV": "test",
                "PORTAL_VAR_DIR": str(tmp),
                "DJANGO_SETTINGS_MODULE": "mlportal.settings",
                "LOG_LEVEL": "WARNING",
            }
        )
        os.environ.pop("DATABASE_URL", None)
        sys.path.insert(0, str(ROOT))
        os.chdir(ROOT)
        import django

        django.setup()
        from django.core.management import call_command
        from django.core.paginator import Paginator

        from apps.core.models import Blob
        from apps.datasets.models import Item
        from apps.datasets.selectors import PAGE_SIZE, items_page
        from apps.labeling.models import ItemLabel, LabelClass
        from apps.projects.models import Project

        call_command("migrate", verbosity=0)
        project = Project.objects.create(slug="paging", name="Paging")
        blob = Blob.objects.create(sha256="0" * 64, path="blobs/none", size=1)
        Item.objects.bulk_create(
            [
                Item(
                    project=project,
                    sha256=f"{i:064x}",
                    blob=blob,
                    thumbnail=blob,
                    width=1,
                    height=1,
                    mode="L",
                    format="PNG",
                    bytes=1,
                )
                for i in range(n)
            ],
            batch_size=5000,
        )
        good = LabelClass.objects.create(project=project, name="good")
        defect = LabelClass.objects.create(project=project, name="defect")
        ids = list(Item.objects.filter(project=project).order_by("-id").values_list("id", flat=True))
        ItemLabel.objects.bulk_create(
            [ItemLabel(item_id=i, label_class=defect if k % 50 == 0 else good) for k, i in enumerate(ids[: n // 2])],
            batch_size=5000,
        )
        print(
            f"items_page at {n:,} items ({n // 2:,} labeled, 2% of those 'defect'), page size {PAGE_SIZE}; best of 7, ms"
        )
        last_after = ids[-PAGE_SIZE - 1]
        first = timed(lambda: items_page(project))
        last = timed(lambda: items_page(project, after=last_after))
        print(f"  first page {first:.1f}   last page (seek) {last:.1f}")
        for name, kw in [
            ("label=good", {"label": "good"}),
            ("label=defect", {"label": "defect"}),
            ("unlabeled", {"status": "unlabeled"}),
            ("labeled", {"status": "labeled"}),
        ]:
            print(f"  {name}: first page {timed(lambda kw=kw: items_page(project, **kw)):.1f}")
        qs = (
            Item.objects.filter(project=project)
            .select_related("thumbnail", "current_label__label_class")
            .order_by("-id")
        )
        pages = Paginator(qs, PAGE_SIZE)
        offset = timed(lambda: list(Paginator(qs, PAGE_SIZE).page(pages.num_pages).object_list))
        print(
            f"  for contrast, Paginator's last page (COUNT(*) + OFFSET {(pages.num_pages - 1) * PAGE_SIZE:,}): {offset:.1f}"
        )
        print(
            f"RESULT items_paging last_page_ms={last:.2f} first_page_ms={first:.2f} ratio={last / first:.2f} goal={GOAL}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
