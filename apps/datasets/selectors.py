"""Reads of the datasets app, scoped to a project the caller already may see."""

from dataclasses import dataclass

from django.db.models import Avg, Count, Min

from apps.core.boxes import changes as box_changes
from apps.core.stages import Forecast, StageSpan, StageState

from .labels import label_reader
from .models import DatasetVersion, ImportJob, Item, VersionItem, VersionStatus

PAGE_SIZE = 60


def data_stage_state(project):

    items = Item.objects.filter(project=project)
    version = DatasetVersion.objects.filter(project=project, status=VersionStatus.READY).first()
    running = ImportJob.objects.filter(project=project, status__in=["queued", "running"]).exists()
    if version is not None:
        return StageState("done", f"v{version.number}: {version.item_count} labeled items")
    if running:
        return StageState("in_progress", "Import running")
    if items.exists():
        return StageState("in_progress", "Items imported, no version yet")
    return StageState("not_started", "No images yet")


def data_stage_span(project):
    """Data began with the first image and was done with the first ready dataset version."""
    first = Item.objects.filter(project=project).aggregate(t=Min("created_at"))["t"]
    done = DatasetVersion.objects.filter(project=project, status=VersionStatus.READY).aggregate(t=Min("created_at"))[
        "t"
    ]
    return StageSpan(first, done)


def storage_forecast(project, plan, now):
    """The plan's storage: the project's bytes per image as measured, times the images it expects."""
    row = Item.objects.filter(project=project).aggregate(n=Count("id"), mean=Avg("bytes"))
    n, mean = row["n"], row["mean"]
    expected = max(n, (plan.planned_items or 0) if plan else 0)
    if not n:
        return Forecast("storage_gb", None, "No image stored yet, so no size per image.", unit="GB", stage="data")
    gb = mean * expected / 1e9
    basis = f"{mean / 1e3:,.0f} kB per image over {n:,} images; {expected:,} images expected."
    return Forecast(
        "storage_gb", round(gb, 3), basis, unit="GB", stage="data", rates={"bytes_per_image": mean, "images": expected}
    )


@dataclass
class Page:
    rows: list
    next_cursor: int | None
    has_more: bool


def items_page(project, *, label="", status="", version=None, split="", after=None, size=PAGE_SIZE):
    """One page of items, newest first, by seek pagination on (project, id): ``after`` is the last
    id of the previous page. No COUNT and no OFFSET, so page 1,000 costs what page 1 costs.

    ``status``: labeled | unlabeled. With ``version``: only its items, ``label``/``split`` as frozen."""
    if version is not None:
        qs = VersionItem.objects.filter(version=version).select_related("item", "item__thumbnail")
        if split:
            qs = qs.filter(split=split)
        if label:
            qs = qs.filter(label=label)
        if after:
            qs = qs.filter(item_id__lt=after)
        rows = list(qs.order_by("-item_id")[: size + 1])
        has_more = len(rows) > size
        rows = rows[:size]
        out = [{"item": r.item, "label": r.label, "split": r.split} for r in rows]
        return Page(out, rows[-1].item_id if has_more else None, has_more)
    qs = Item.objects.filter(project=project).select_related("thumbnail", "current_label__label_class")
    if label:
        qs = qs.filter(current_label__label_class__name=label)
    if status == "labeled":
        qs = qs.filter(current_label__isnull=False)
    elif status == "unlabeled":
        qs = qs.filter(current_label__isnull=True)
    if after:
        qs = qs.filter(id__lt=after)
    rows = list(qs.order_by("-id")[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    out = []
    for item in rows:
        current = getattr(item, "current_label", None)  # its DoesNotExist is an AttributeError
        out.append({"item": item, "label": current.label_class.name if current else "", "split": ""})
    return Page(out, rows[-1].id if has_more else None, has_more)


def version_entries(version, split=None):
    """(item, label, split) rows of a version, each item with its blob (``item.blob.path`` is the
    storage name to open with ``apps.core.storage.blob_open``). Ordered by item id."""
    qs = VersionItem.objects.filter(version=version).select_related("item", "item__blob").order_by("item_id")
    if split:
        qs = qs.filter(split=split)
    return [(e.item, e.label, e.split) for e in qs]


def version_runs(version):
    """The training runs that used ``version``, newest first."""
    return list(version.training_runs.all().order_by("-pk"))


def version_diff(old, new):
    """Items added, removed and relabeled going from version ``old`` to ``new``, and the items kept
    in both whose boxes changed (boxes added, moved or removed; core/boxes.py matches them)."""
    rows = lambda v: VersionItem.objects.filter(version=v).values_list("item_id", "label", "regions")  # noqa: E731
    a = {i: (label, regions) for i, label, regions in rows(old)}
    b = {i: (label, regions) for i, label, regions in rows(new)}
    added = sorted(set(b) - set(a))
    removed = sorted(set(a) - set(b))
    kept = sorted(set(a) & set(b))
    relabeled = [i for i in kept if a[i][0] != b[i][0]]
    boxes = []
    for i in kept:
        if a[i][1] != b[i][1]:
            change = box_changes(a[i][1], b[i][1])
            if any(change.values()):
                boxes.append((i, change))
    names = dict(
        Item.objects.filter(pk__in=added + removed + relabeled + [i for i, _ in boxes]).values_list(
            "pk", "original_name"
        )
    )
    return {
        "added": [{"item": i, "name": names.get(i, ""), "label": b[i][0], "boxes": len(b[i][1])} for i in added],
        "removed": [{"item": i, "name": names.get(i, ""), "label": a[i][0], "boxes": len(a[i][1])} for i in removed],
        "relabeled": [{"item": i, "name": names.get(i, ""), "from": a[i][0], "to": b[i][0]} for i in relabeled],
        "boxes": [{"item": i, "name": names.get(i, ""), **change} for i, change in boxes],
    }


def project_labels(project):
    return list(label_reader().names(project))


def item_for_project(project, pk):
    return Item.objects.select_related("blob", "thumbnail", "import_job").filter(project=project, pk=pk).first()
