"""An item's current label (the contract other stages call: ``item_label_set``, ``item_labels_add``),
its regions, bulk labels and labels from folders."""

import math

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core import sql
from apps.datasets.models import Item

from ..models import (
    ItemLabel,
    LabelChange,
    LabelTask,
    Lease,
    TaskState,
)
from .schema import label_class_get_or_create


class LabelConflict(ValidationError):
    """Someone else changed the item's label since the caller loaded it."""


# Regions ------------------------------------------------------------------------------------------


def regions_clean(regions, *, item, project_classes=None):
    """Bounding boxes [{x, y, w, h, class?}] inside the image, in image pixels."""
    if regions in (None, ""):
        return []
    if not isinstance(regions, list) or len(regions) > 200:
        raise ValidationError({"regions": ["Regions must be a list of at most 200 boxes."]})
    out = []
    for i, r in enumerate(regions, start=1):
        try:
            x, y, w, h = (float(r[k]) for k in ("x", "y", "w", "h"))
        except (KeyError, TypeError, ValueError):
            raise ValidationError({"regions": [f"Box {i} needs numeric x, y, w and h."]}) from None
        if not all(math.isfinite(v) for v in (x, y, w, h)):  # NaN would pass every bound below
            raise ValidationError({"regions": [f"Box {i} needs finite x, y, w and h."]})
        if w < 1 or h < 1 or x < 0 or y < 0 or x + w > item.width + 0.5 or y + h > item.height + 0.5:
            raise ValidationError(
                {
                    "regions": [
                        f"Box {i} ({x:.0f},{y:.0f} {w:.0f}×{h:.0f}) must lie inside the {item.width}×{item.height} image."
                    ]
                }
            )
        box = {"x": round(x, 1), "y": round(y, 1), "w": round(w, 1), "h": round(h, 1)}
        if isinstance(r, dict) and r.get("class"):
            box["class"] = str(r["class"])[:100]
        out.append(box)
    return out


# Current label (the contract) ---------------------------------------------------------------------


def _record(item, user, *, scope, source, old, new, old_regions=None, new_regions=None, later=None):
    """One history row; with ``later`` (a list) it is only collected, to be written in one go."""
    row = LabelChange(
        item=item,
        user=user if getattr(user, "is_authenticated", False) else None,
        scope=scope,
        source=source,
        old=old,
        new=new,
        old_regions=old_regions or [],
        new_regions=new_regions or [],
    )
    if later is not None:
        later.append(row)
    else:
        row.save()


@transaction.atomic
def item_label_set(*, item, label_class, user=None, source="labeler", expected_revision=None, regions=None):
    """Set the item's current label. With ``expected_revision`` (the revision the caller saw; 0 for
    "no label yet") a concurrent change raises LabelConflict instead of being overwritten.
    Every change is kept as a LabelChange row; the item leaves the labeling queue."""
    if label_class.project_id != item.project_id:
        raise ValidationError({"label": "That label class belongs to another project."})
    current = (
        ItemLabel.objects.select_for_update(of=("self",))
        .select_related("label_class", "updated_by")
        .filter(item=item)
        .first()
    )
    seen = current.revision if current else 0
    if expected_revision is not None and int(expected_revision) != seen:
        raise LabelConflict(_conflict_message(item, current))
    label = _label_write(item, label_class, user=user, source=source, current=current, regions=regions)
    LabelTask.objects.filter(item=item).exclude(state=TaskState.DONE).update(state=TaskState.DONE)
    return label


def item_labels_add(*, labels, user=None, source="import"):
    """Give many unlabeled items their first label in three statements (imports with labels from
    folders): ``labels`` is [(item, LabelClass)]. An item that already carries a label keeps it.
    Each label gets its history row and its item leaves the labeling queue, as with
    ``item_label_set``. Returns the ids of the items labeled. Call it inside a transaction."""
    if not labels:
        return []
    for item, label_class in labels:
        if label_class.project_id != item.project_id:
            raise ValidationError({"label": f"Label {label_class.name!r} belongs to another project than {item}."})
    now = timezone.now()
    by = user.pk if getattr(user, "is_authenticated", False) else None
    rows = [
        {
            "item_id": item.pk,
            "label_class_id": label_class.pk,
            "source": source,
            "updated_by_id": by,
            "updated_at": now,
            "revision": 1,
            "regions": [],
        }
        for item, label_class in labels
    ]
    done = set()
    for k in range(0, len(rows), 200):  # a few hundred rows per statement keep within SQLite's variable limit
        done.update(sql.insert(ItemLabel, rows[k : k + 200], returning="item_id", skip_conflicts_on="item_id"))
    LabelChange.objects.bulk_create(
        [
            LabelChange(item=item, user_id=by, scope="final", source=source, old="", new=label_class.name)
            for item, label_class in labels
            if item.pk in done
        ],
        batch_size=500,
    )
    LabelTask.objects.filter(item_id__in=done).exclude(state=TaskState.DONE).update(state=TaskState.DONE)
    return sorted(done)


def _label_write(item, label_class, *, user, source, current, regions):
    """Write the current label and its history row; ``current`` is the locked ItemLabel or None."""
    old_name = current.label_class.name if current else ""
    old_regions = current.regions if current else []
    if current is None:
        current = ItemLabel.objects.create(
            item=item, label_class=label_class, updated_by=user, source=source, regions=regions or [], revision=1
        )
    else:
        current.label_class, current.updated_by, current.source = label_class, user, source
        if regions is not None:
            current.regions = regions
        current.revision += 1
        current.save()
    _record(
        item,
        user,
        scope="final",
        source=source,
        old=old_name,
        new=label_class.name,
        old_regions=old_regions,
        new_regions=current.regions,
    )
    return current


def _conflict_message(item, current):
    if current is None:
        return (
            f"The label of {item} was removed by someone else after you opened it. "
            "Your label was not saved; look again and choose."
        )
    who = current.updated_by.username if current.updated_by else "someone"
    when = timezone.localtime(current.updated_at).strftime("%H:%M:%S")
    return (
        f"Conflict: {who} labeled {item} as “{current.label_class.name}” at {when}, after you opened it. "
        "Your label was not saved; look again and choose."
    )


@transaction.atomic
def item_label_clear(*, item, user=None, source="labeler", expected_revision=None):
    current = (
        ItemLabel.objects.select_for_update(of=("self",))
        .select_related("label_class", "updated_by")
        .filter(item=item)
        .first()
    )
    if expected_revision is not None and int(expected_revision) != (current.revision if current else 0):
        raise LabelConflict(_conflict_message(item, current))
    if current is None:
        return
    _record(item, user, scope="final", source=source, old=current.label_class.name, new="", old_regions=current.regions)
    current.delete()


@transaction.atomic
def labels_bulk_set(*, project, user, item_ids, label_class):
    """Grid mode: one class for many items (each change kept in the history)."""

    if label_class.project_id != project.pk:
        raise ValidationError({"label_class": ["That label class belongs to another project."]})
    ids = sorted({int(i) for i in item_ids})
    if not ids:
        raise ValidationError({"items": ["Select at least one image."]})
    if len(ids) > 1000:
        raise ValidationError({"items": ["Apply a class to at most 1,000 images at a time."]})
    items = list(Item.objects.filter(project=project, pk__in=ids))
    if len(items) != len(ids):
        missing = sorted(set(ids) - {i.pk for i in items})[:5]
        raise ValidationError({"items": [f"No such item in this project: {', '.join(map(str, missing))}."]})
    for item in items:
        current = ItemLabel.objects.filter(item=item).only("label_class_id").first()
        if current is None or current.label_class_id != label_class.pk:
            item_label_set(item=item, label_class=label_class, user=user, source="bulk")
        Lease.objects.filter(task__item=item).delete()
    return len(items)


def folder_labels_apply(*, project, labels, user=None):
    """Labels from folders, a labeling step on imported items: ``labels`` is [(item, label name)];
    each item without a label gets its first one (classes made as needed), in one go. Call it inside
    the import batch's transaction (``items_imported``)."""
    if not labels:
        return []
    labeled = set(ItemLabel.objects.filter(item__in=[item for item, _ in labels]).values_list("item_id", flat=True))
    classes, new = {}, []
    for item, name in labels:
        if item.pk in labeled:
            continue
        if name not in classes:
            classes[name] = label_class_get_or_create(project=project, name=name)
        new.append((item, classes[name]))
        labeled.add(item.pk)
    return item_labels_add(labels=new, user=user, source="import")
