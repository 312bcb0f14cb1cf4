"""Every write of the labeling app: schema, queue (leases), annotations, review, import.

``label_class_get_or_create``, ``item_label_set`` and ``item_labels_add`` are the contract other
apps call (datasets uses them for class-per-folder imports); ``queue_for_review`` lets training
and monitoring ask for a second look at an item.
"""

import json
import re
import uuid
from datetime import timedelta
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core import sql
from apps.core.audit import audit_record
from apps.core.colors import GREEN, class_color
from apps.core.text import clean_name

from .models import (
    Annotation,
    AnnotationStatus,
    ItemLabel,
    LabelChange,
    LabelClass,
    LabelingSettings,
    LabelTask,
    Lease,
    ReviewDecision,
    TaskState,
)

# Keys the workspace keeps for itself; a class hotkey may not take them.
RESERVED_KEYS = {
    "s": "skip",
    "b": "back",
    "u": "undo",
    "r": "region tool",
    "g": "grid",
    "0": "reset zoom",
    "+": "zoom in",
    "-": "zoom out",
    "?": "help",
    " ": "pan",
}
HOTKEY_RE = re.compile(r"^[a-z0-9]$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_OVERLAP = 10
COUNTED = (AnnotationStatus.SUBMITTED, AnnotationStatus.ACCEPTED)  # annotations that still count


class LabelConflict(ValidationError):
    """Someone else changed the item's label since the caller loaded it."""


# Schema -------------------------------------------------------------------------------------------


def label_class_get_or_create(*, project, name):
    """The class ``name`` of ``project``, created with the next colour and hotkey if new."""
    name = clean_name(name)
    if not name or len(name) > 100:
        raise ValidationError({"label": f"Label {name!r} must be 1 to 100 characters."})
    existing = LabelClass.objects.filter(project=project, name=name).first()
    if existing:
        return existing
    n = LabelClass.objects.filter(project=project).count()
    used = set(LabelClass.objects.filter(project=project).values_list("hotkey", flat=True))
    hotkey = next((k for k in "123456789" if k not in used), "")
    warm = LabelClass.objects.filter(project=project).exclude(color=GREEN).count()
    obj, _ = LabelClass.objects.get_or_create(
        project=project,
        name=name,
        defaults={"color": class_color(name, warm), "hotkey": hotkey, "order": n},
    )
    return obj


def labeling_settings_for(project):
    obj, _ = LabelingSettings.objects.get_or_create(project=project)
    return obj


def _clean_classes(classes):
    errors, names, keys = [], set(), {}
    out = []
    for i, c in enumerate(classes, start=1):
        name = clean_name(c.get("name"))
        color = (c.get("color") or "").strip()
        hotkey = (c.get("hotkey") or "").strip().lower()
        where = f"Class {i}" + (f" ({name})" if name else "")
        if not name or len(name) > 100:
            errors.append(f"{where}: the name must be 1 to 100 characters.")
        elif name.lower() in names:
            errors.append(f"{where}: the name {name!r} is used twice.")
        names.add(name.lower())
        if not COLOR_RE.match(color):
            errors.append(f"{where}: colour {color!r} is not a #rrggbb colour.")
        if hotkey:
            if hotkey in RESERVED_KEYS:
                errors.append(f"{where}: hotkey {hotkey!r} is kept for {RESERVED_KEYS[hotkey]}; pick another.")
            elif not HOTKEY_RE.match(hotkey):
                errors.append(f"{where}: hotkey {hotkey!r} must be one letter or digit.")
            elif hotkey in keys:
                errors.append(f"{where}: hotkey {hotkey!r} is already used by {keys[hotkey]}.")
            keys[hotkey] = name
        out.append(
            {
                "id": c.get("id"),
                "name": name,
                "color": color.lower(),
                "hotkey": hotkey,
                "order": int(c.get("order") if c.get("order") not in (None, "") else i),
            }
        )
    return out, errors


@transaction.atomic
def label_schema_update(
    *, project, user, classes, overlap=None, overlap_share=None, lease_seconds=None, regions_enabled=None
):
    """Replace the project's classes (a list of {id?, name, color, hotkey, order}) and settings.

    Classes missing from the list are deleted, unless items carry them (then nothing changes)."""
    cleaned, errors = _clean_classes(classes)
    if not cleaned:
        errors.append("A schema needs at least one class.")
    field_errors = {}
    if overlap is not None and not (1 <= int(overlap) <= MAX_OVERLAP):
        field_errors["overlap"] = [f"Labels per item must be between 1 and {MAX_OVERLAP}."]
    if overlap_share is not None and not (0.0 <= float(overlap_share) <= 1.0):
        field_errors["overlap_share"] = ["The overlap sample share must be between 0 and 1 (e.g. 0.1 for 10%)."]
    if lease_seconds is not None and not (30 <= int(lease_seconds) <= 24 * 3600):
        field_errors["lease_seconds"] = ["The lease timeout must be between 30 seconds and 24 hours."]
    existing = {c.pk: c for c in LabelClass.objects.select_for_update().filter(project=project)}
    for c in cleaned:
        if c["id"] not in (None, "") and int(c["id"]) not in existing:
            errors.append(f"Class {c['name']!r}: no such class in this project (id {c['id']}).")
    keep = {int(c["id"]) for c in cleaned if c["id"] not in (None, "")}
    for pk, cls in existing.items():
        if pk in keep:
            continue
        in_use = (
            ItemLabel.objects.filter(label_class=cls).exists()
            or Annotation.objects.filter(label_class=cls).exists()
            or ReviewDecision.objects.filter(label_class=cls).exists()
        )
        if in_use:
            errors.append(f"Class {cls.name!r} labels items, so it cannot be removed; rename it instead.")
    if errors or field_errors:
        raise ValidationError({**({"classes": errors} if errors else {}), **field_errors})
    # Free names and hotkeys first so that swaps between classes do not trip the unique constraint.
    LabelClass.objects.filter(project=project).exclude(pk__in=keep).delete()
    # (No NUL in the placeholder: PostgreSQL refuses it in text; a random suffix cannot match a real name.)
    placeholder = uuid.uuid4().hex
    for pk in keep:
        LabelClass.objects.filter(pk=pk).update(name=f"~renaming-{pk}-{placeholder}", hotkey="")
    for c in cleaned:
        fields = {"name": c["name"], "color": c["color"], "hotkey": c["hotkey"], "order": c["order"]}
        if c["id"] not in (None, ""):
            LabelClass.objects.filter(pk=int(c["id"])).update(**fields)
        else:
            LabelClass.objects.create(project=project, **fields)
    st = labeling_settings_for(project)
    for field, value, cast in (
        ("overlap", overlap, int),
        ("overlap_share", overlap_share, float),
        ("lease_seconds", lease_seconds, int),
        ("regions_enabled", regions_enabled, bool),
    ):
        if value is not None:
            setattr(st, field, cast(value))
    st.save()
    audit_record(
        actor=user,
        action="labeling.schema_updated",
        project=project,
        data={
            "classes": [{k: c[k] for k in ("name", "color", "hotkey")} for c in cleaned],
            "overlap": st.overlap,
            "overlap_share": st.overlap_share,
            "lease_seconds": st.lease_seconds,
            "regions_enabled": st.regions_enabled,
        },
    )
    return list(LabelClass.objects.filter(project=project)), st


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


# Queue --------------------------------------------------------------------------------------------


def _sampled(sha256, share):
    """Deterministic sample membership from the content hash (the same item always decides alike)."""
    return share > 0 and int(sha256[:8], 16) / 0x100000000 < share


def _settings_if_synced(project):
    """The project's LabelingSettings when no item waits for a task, else None: one query (the
    settings row and an EXISTS on the (project, id) index), the usual case on every "next item"."""
    from apps.datasets.models import Item

    s, i = LabelingSettings._meta.db_table, Item._meta.db_table
    rows = sql.objects(
        LabelingSettings,
        f"SELECT s.*, EXISTS (SELECT 1 FROM {i} i WHERE i.project_id = s.project_id AND i.id > s.synced_item_id) "
        f"AS has_new FROM {s} s WHERE s.project_id = %s",
        [project.pk],
    )
    return rows[0] if rows and not rows[0].has_new else None


def queue_sync(*, project):
    """Give every item added since the last sync its place in the queue (one range query when none).
    Returns the project's LabelingSettings."""
    from apps.datasets.models import Item

    st = _settings_if_synced(project)
    if st is not None:
        return st
    st = labeling_settings_for(project)
    new = list(
        Item.objects.filter(project=project, id__gt=st.synced_item_id)
        .order_by("id")
        .values_list("id", "sha256")[:20000]
    )
    if not new:
        return st
    _tasks_create(project, st, new)
    LabelingSettings.objects.filter(pk=st.pk, synced_item_id__lt=new[-1][0]).update(synced_item_id=new[-1][0])
    return queue_sync(project=project)  # until no item is left without a task; returns the settings


def queue_repair(*, project):
    """Give a task to any item that has none (one anti-join). ``queue_sync`` goes by id and so can
    miss an item whose transaction committed after a later id was synced (a long import on
    PostgreSQL); this runs where it is cheap to: when the queue looks empty, and on the overview."""
    from apps.datasets.models import Item

    st = labeling_settings_for(project)
    missing = list(Item.objects.filter(project=project, label_task__isnull=True).values_list("id", "sha256")[:20000])
    if missing:
        _tasks_create(project, st, missing)
    return len(missing)


def _tasks_create(project, st, id_sha):
    """Tasks for [(item id, sha256)]: sampled items want ``overlap`` labels; labeled ones are done."""
    labeled = set(ItemLabel.objects.filter(item_id__in=[i for i, _ in id_sha]).values_list("item_id", flat=True))
    LabelTask.objects.bulk_create(
        [
            LabelTask(
                project=project,
                item_id=i,
                needed=st.overlap if st.overlap > 1 and _sampled(sha, st.overlap_share) else 1,
                state=TaskState.DONE if i in labeled else TaskState.OPEN,
            )
            for i, sha in id_sha
        ],
        ignore_conflicts=True,
        batch_size=2000,
    )


def _task_for(item):
    task = LabelTask.objects.filter(item=item).first()
    if task is None:
        queue_sync(project=item.project)
        task = LabelTask.objects.filter(item=item).first()
    if task is None:  # an item older than the sync mark that had no task (should not happen)
        task, _ = LabelTask.objects.get_or_create(item=item, defaults={"project_id": item.project_id})
    return task


CLAIM_SLACK = 4


def queue_next(*, project, user, n=1):
    """Up to ``n`` items for ``user``: the ones they already hold first, then new claims.

    An item is held by at most ``needed - done`` labelers at once (one, unless the project asks for
    overlap); a lease that runs out returns the item to the queue."""
    st = queue_sync(project=project)
    now = timezone.now()
    until = now + timedelta(seconds=st.lease_seconds)
    n = max(1, min(int(n), 20))
    held = _held(project, user, now, limit=n)
    if held:
        Lease.objects.filter(id__in=[i for i, _ in held]).update(expires_at=until)
    task_ids = [t for _, t in held]
    attempts = 0
    while len(task_ids) < n and attempts < 5:
        attempts += 1
        # A few spare candidates: labelers asking at the same moment race for the front of the
        # queue, and the loser claims the next one instead of querying again.
        candidates = _candidates(project, user, now, exclude=task_ids, limit=n - len(task_ids) + CLAIM_SLACK)
        if not candidates and not (attempts == 1 and queue_repair(project=project)):
            break
        for task_id, version in candidates:
            if len(task_ids) < n and _claim(task_id, version, user, until):
                task_ids.append(task_id)
    return task_ids


def _held(project, user, now, *, limit):
    """[(lease id, task id)] of the open tasks ``user`` holds now, front of the queue first."""
    from django.db import connection

    t, le = LabelTask._meta.db_table, Lease._meta.db_table
    return sql.run(
        f"""
        SELECT l.id, l.task_id FROM {le} l JOIN {t} t ON t.id = l.task_id
        WHERE l.user_id = %s AND l.expires_at > %s AND l.skipped = %s AND t.project_id = %s AND t.state = %s
        ORDER BY t.priority DESC, t.id LIMIT %s""",
        [user.pk, connection.ops.adapt_datetimefield_value(now), False, project.pk, TaskState.OPEN, limit],
    )


def _claim(task_id, version, user, until):
    """Lease the task to ``user`` if nobody claimed it since ``version`` was read: of two labelers
    racing for one task, one wins and the other moves on. Two statements in one transaction."""
    with transaction.atomic():
        if (
            sql.run(
                f"UPDATE {LabelTask._meta.db_table} SET version = version + 1 WHERE id = %s AND version = %s",
                [task_id, version],
            )
            != 1
        ):
            return False
        _lease(task_id, user, until, skipped=False)
    return True


def _candidates(project, user, now, *, exclude, limit):
    """Open tasks ``user`` may claim, front of the queue first: not held or skipped by them, not
    labeled by them, and with a free place (``needed`` minus labels done minus other holders).

    Plain SQL because this is the hot path of every "next item": the ORM form of these three
    subqueries costs more to build than the query costs to run. Rides the queue index
    (project, state, -priority, id) and the unique (task, user) / (item, user) indexes."""
    from django.db import connection

    t, le, a = LabelTask._meta.db_table, Lease._meta.db_table, Annotation._meta.db_table
    ts = connection.ops.adapt_datetimefield_value(now)
    not_in = f"AND t.id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else ""
    query = f"""
        SELECT t.id, t.version FROM {t} t
        WHERE t.project_id = %s AND t.state = %s {not_in}
          AND NOT EXISTS (SELECT 1 FROM {le} l WHERE l.task_id = t.id AND l.user_id = %s AND l.expires_at > %s)
          AND NOT EXISTS (SELECT 1 FROM {a} a WHERE a.item_id = t.item_id AND a.user_id = %s AND a.status IN (%s, %s))
          AND t.needed > t.done + (SELECT COUNT(*) FROM {le} h
                                   WHERE h.task_id = t.id AND h.expires_at > %s AND h.skipped = %s AND h.user_id <> %s)
        ORDER BY t.priority DESC, t.id
        LIMIT %s"""
    params = [project.pk, TaskState.OPEN, *exclude, user.pk, ts, user.pk, *COUNTED, ts, False, user.pk, limit]
    return sql.run(query, params)


def _lease(task_id, user, until, *, skipped):
    """Insert or refresh ``user``'s lease on a task in one statement (an upsert on (task, user);
    SQLite and PostgreSQL spell it alike)."""
    from django.db import connection

    sql.run(
        f"""INSERT INTO {Lease._meta.db_table} (task_id, user_id, expires_at, skipped) VALUES (%s, %s, %s, %s)
                ON CONFLICT (task_id, user_id) DO UPDATE SET expires_at = excluded.expires_at, skipped = excluded.skipped""",
        [task_id, user.pk, connection.ops.adapt_datetimefield_value(until), skipped],
    )


@transaction.atomic
def item_skip(*, item, user):
    """Hide the item from ``user`` for one lease period and let others have it."""
    task = _task_for(item)
    st = labeling_settings_for(item.project)
    _lease(task.pk, user, timezone.now() + timedelta(seconds=st.lease_seconds), skipped=True)
    return task


def _settle(task, *, user, expected_revision=None, source="labeler"):
    """After annotations change: set the final label when enough labelers agree, else mark review."""
    anns = list(Annotation.objects.filter(item_id=task.item_id, status__in=COUNTED).select_related("label_class"))
    task.done = len(anns)
    item = task.item
    if task.done < task.needed:
        task.state = TaskState.OPEN
    elif len({a.label_class_id for a in anns}) == 1:
        a = max(anns, key=lambda a: a.updated_at)
        current = ItemLabel.objects.filter(item=item).first()
        if current is None or current.label_class_id != a.label_class_id or current.regions != a.regions:
            item_label_set(
                item=item,
                label_class=a.label_class,
                user=user,
                source=source,
                expected_revision=expected_revision,
                regions=a.regions,
            )
        task.state = TaskState.DONE
    else:
        task.state = TaskState.REVIEW
    task.save(update_fields=["done", "state", "updated_at"])


class _SubmitState(NamedTuple):
    task_id: int
    needed: int
    label_id: int | None
    revision: int  # of the item's current label; 0 for none
    label_name: str
    label_regions: list
    ann_id: int | None
    ann_revision: int
    ann_name: str
    ann_regions: list
    label_by: int | None = None  # who set the item's current label


def _submit_state(item, user):
    """What a submit needs to know, in one read: the item's task, its current label and ``user``'s
    own annotation (None when the item has no task yet). On PostgreSQL the task row stays locked
    until the transaction ends, so that two submits of one item take turns."""
    from django.db import connection

    t, lab, a, c = (m._meta.db_table for m in (LabelTask, ItemLabel, Annotation, LabelClass))
    lock = " FOR UPDATE OF t" if connection.features.has_select_for_update_of else ""
    rows = sql.run(
        f"""
        SELECT t.id, t.needed, l.id, l.revision, lc.name, l.regions, a.id, a.revision, ac.name, a.regions,
               l.updated_by_id
        FROM {t} t
        LEFT JOIN {lab} l ON l.item_id = t.item_id LEFT JOIN {c} lc ON lc.id = l.label_class_id
        LEFT JOIN {a} a ON a.item_id = t.item_id AND a.user_id = %s LEFT JOIN {c} ac ON ac.id = a.label_class_id
        WHERE t.item_id = %s{lock}""",
        [user.pk, item.pk],
    )
    if not rows:
        return None
    (
        task_id,
        needed,
        label_id,
        revision,
        label_name,
        label_regions,
        ann_id,
        ann_revision,
        ann_name,
        ann_regions,
        label_by,
    ) = rows[0]
    return _SubmitState(
        task_id,
        needed,
        label_id,
        revision or 0,
        label_name or "",
        _json(label_regions),
        ann_id,
        ann_revision or 0,
        ann_name or "",
        _json(ann_regions),
        label_by,
    )


def _json(value):
    """A JSON column read with plain SQL (text on SQLite and on PostgreSQL with Django's loaders)."""
    return json.loads(value) if isinstance(value, str) else (value if value is not None else [])


@transaction.atomic
def annotation_submit(*, item, user, label_class, regions=None, expected_revision=None):
    """``user`` labels ``item``. ``expected_revision`` is the item's label revision the labeler saw;
    if someone changed the label since, LabelConflict (nothing is written).

    The hot path of the workspace: one read (task, current label, my annotation), then only
    writes. The item's label changes by compare-and-set on its revision, so a concurrent change
    made between the read and the write is a conflict too, never a silent overwrite."""
    if label_class.project_id != item.project_id:
        raise ValidationError({"label_class": ["That label class belongs to another project."]})
    regions = regions_clean(regions, item=item)
    state = _submit_state(item, user)
    if state is None:
        _task_for(item)
        state = _submit_state(item, user)
    if expected_revision is not None and int(expected_revision) != state.revision:
        raise LabelConflict(_conflict_message(item, _current_label(item)))
    now = timezone.now()
    ann = Annotation(
        id=state.ann_id,
        item=item,
        user=user,
        label_class=label_class,
        regions=regions,
        status=AnnotationStatus.SUBMITTED,
        revision=state.ann_revision + 1,
        updated_at=now,
    )
    if state.ann_id is None:
        ann.created_at = now
        ann.pk = sql.insert(
            Annotation,
            [
                {
                    "item_id": item.pk,
                    "user_id": user.pk,
                    "label_class_id": label_class.pk,
                    "regions": regions,
                    "status": ann.status,
                    "revision": ann.revision,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
            returning="id",
        )[0]
    else:
        sql.run(
            f"UPDATE {Annotation._meta.db_table} SET label_class_id = %s, regions = %s, status = %s, "
            "revision = %s, updated_at = %s WHERE id = %s",
            [
                label_class.pk,
                sql.db_value(Annotation, "regions", regions),
                ann.status,
                ann.revision,
                sql.db_value(Annotation, "updated_at", now),
                ann.pk,
            ],
        )
    history = [
        {
            "item_id": item.pk,
            "user_id": user.pk,
            "at": now,
            "scope": "annotation",
            "source": "labeler",
            "old": state.ann_name,
            "new": label_class.name,
            "old_regions": state.ann_regions,
            "new_regions": regions,
        }
    ]
    sql.run(f"DELETE FROM {Lease._meta.db_table} WHERE task_id = %s AND user_id = %s", [state.task_id, user.pk])
    if state.needed <= 1:
        # One label wanted: this labeler's word is the item's label.
        ann.final = _label_swap(item, label_class, user=user, state=state, regions=regions, now=now)
        history.append({**history[0], "scope": "final", "old": state.label_name, "old_regions": state.label_regions})
        sql.insert(LabelChange, history)
        # Replacing someone else's different label is a disagreement: a reviewer sees both labels.
        replaced = bool(state.label_name) and state.label_name != label_class.name and state.label_by != user.pk
        if replaced:
            reason = f"{user.username} relabeled {state.label_name} → {label_class.name}: labels disagree"
            sql.run(
                f"UPDATE {LabelTask._meta.db_table} SET done = 1, state = %s, reason = %s, updated_at = %s "
                "WHERE id = %s",
                [TaskState.REVIEW, reason[:200], sql.db_value(LabelTask, "updated_at", now), state.task_id],
            )
        else:
            sql.run(
                f"UPDATE {LabelTask._meta.db_table} SET done = 1, state = %s, updated_at = %s WHERE id = %s",
                [TaskState.DONE, sql.db_value(LabelTask, "updated_at", now), state.task_id],
            )
    else:
        sql.insert(LabelChange, history)
        task = LabelTask.objects.get(pk=state.task_id)
        task.item = item
        _settle(task, user=user, expected_revision=state.revision)
        ann.final = _current_label(item)
    return ann


def _current_label(item):
    return ItemLabel.objects.select_related("label_class", "updated_by").filter(item=item).first()


def _label_swap(item, label_class, *, user, state, regions, now):
    """Make ``label_class`` the item's label if its revision is still ``state.revision`` (an insert
    if it had none), else LabelConflict. Returns the new ItemLabel (built here, not read back)."""
    from django.db import connection

    table, at = ItemLabel._meta.db_table, connection.ops.adapt_datetimefield_value(now)
    by = user.pk if getattr(user, "is_authenticated", False) else None
    if state.label_id is None:
        rows = sql.run(
            f"INSERT INTO {table} (item_id, label_class_id, source, updated_by_id, updated_at, revision, regions) "
            "VALUES (%s, %s, %s, %s, %s, 1, %s) ON CONFLICT (item_id) DO NOTHING RETURNING id",
            [item.pk, label_class.pk, "labeler", by, at, sql.db_value(ItemLabel, "regions", regions)],
        )
        label_id = rows[0][0] if rows else None
    else:
        label_id = (
            state.label_id
            if sql.run(
                f"UPDATE {table} SET label_class_id = %s, source = %s, updated_by_id = %s, updated_at = %s, "
                "revision = revision + 1, regions = %s WHERE id = %s AND revision = %s",
                [
                    label_class.pk,
                    "labeler",
                    by,
                    at,
                    sql.db_value(ItemLabel, "regions", regions),
                    state.label_id,
                    state.revision,
                ],
            )
            else None
        )
    if label_id is None:  # someone else got there between our read and this write
        raise LabelConflict(_conflict_message(item, _current_label(item)))
    return ItemLabel(
        id=label_id,
        item=item,
        label_class=label_class,
        source="labeler",
        updated_by=user if by else None,
        updated_at=now,
        revision=state.revision + 1,
        regions=regions,
    )


def _label_before(item, user):
    """The item's final label before ``user`` last set it: (LabelClass or None, regions)."""
    change = (
        LabelChange.objects.filter(item=item, user=user, scope="final")
        .exclude(source__in=("undo", "review"))
        .order_by("-at", "-id")
        .first()
    )
    if change is None or not change.old:
        return None, []
    return LabelClass.objects.filter(project_id=item.project_id, name=change.old).first(), change.old_regions


def _label_restore(item, *, undone_by, by, source):
    """``undone_by``'s label of ``item`` is taken back: the label before it returns (or none)."""
    before, regions = _label_before(item, undone_by)
    if before is None:
        item_label_clear(item=item, user=by, source=source)
    else:
        item_label_set(item=item, label_class=before, user=by, source=source, regions=regions)
    return before


@transaction.atomic
def annotation_undo(*, item, user, expected_revision=None):
    """Take back ``user``'s last label of ``item``: the annotation returns to what it was before
    (none, usually) and the item comes back to the same labeler."""
    task = LabelTask.objects.select_for_update(of=("self",)).select_related("item").get(pk=_task_for(item).pk)
    current = ItemLabel.objects.select_related("label_class", "updated_by").filter(item=item).first()
    if expected_revision is not None and int(expected_revision) != (current.revision if current else 0):
        raise LabelConflict(_conflict_message(item, current))
    ann = Annotation.objects.select_related("label_class").filter(item=item, user=user).first()
    if ann is None:
        raise ValidationError({"item": ["You have no label on this item to undo."]})
    last = LabelChange.objects.filter(item=item, user=user, scope="annotation").order_by("-at", "-id").first()
    previous = last.old if last else ""
    prev_class = LabelClass.objects.filter(project_id=item.project_id, name=previous).first() if previous else None
    _record(
        item,
        user,
        scope="annotation",
        source="undo",
        old=ann.label_class.name,
        new=previous,
        old_regions=ann.regions,
        new_regions=last.old_regions if last else [],
    )
    if prev_class is None:
        ann.delete()
    else:
        ann.label_class, ann.regions = prev_class, last.old_regions
        ann.revision += 1
        ann.save()
    mine_is_final = current is not None and current.updated_by_id == user.pk
    if task.needed <= 1 and mine_is_final:
        if prev_class is None:
            # The item's label before mine comes back (someone else's, or none).
            _label_restore(item, undone_by=user, by=user, source="undo")
            task.done, task.state = 0, TaskState.OPEN
            task.save(update_fields=["done", "state", "updated_at"])
        else:
            item_label_set(item=item, label_class=prev_class, user=user, source="undo", regions=last.old_regions)
    elif task.needed > 1:
        if current is not None and prev_class is None:
            item_label_clear(item=item, user=user, source="undo")
        _settle(task, user=user, source="undo")
    if prev_class is None:
        st = labeling_settings_for(item.project)
        Lease.objects.update_or_create(
            task=task,
            user=user,
            defaults={"expires_at": timezone.now() + timedelta(seconds=st.lease_seconds), "skipped": False},
        )
    return ann if prev_class else None


@transaction.atomic
def labels_bulk_set(*, project, user, item_ids, label_class):
    """Grid mode: one class for many items (each change kept in the history)."""
    from apps.datasets.models import Item

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


def queue_for_review(*, item, reason, requested_by=None, priority=100):
    """Put ``item`` at the front of its project's labeling queue for a second look (a misclassified
    test image, a low-confidence production input). Its current label stays until a labeler
    decides again; the labeler sees ``reason``. Calling it again for a queued item only updates
    the reason. Returns the LabelTask."""
    with transaction.atomic():
        task = _task_for(item)
        updated = LabelTask.objects.filter(pk=task.pk).update(
            state=TaskState.OPEN,
            priority=max(task.priority, priority),
            reason=str(reason)[:200],
            requested_by=requested_by,
            done=0,
            needed=max(task.needed, 1),
            version=F("version") + 1,
        )
        assert updated == 1
        # Earlier annotations answered the old question; the second look starts afresh.
        Annotation.objects.filter(item=item, status__in=COUNTED).update(status=AnnotationStatus.SUPERSEDED)
        audit_record(
            actor=requested_by,
            action="labeling.queued_for_review",
            project=item.project,
            obj=item,
            reason=str(reason)[:200],
        )
    task.refresh_from_db()
    return task


# Review -------------------------------------------------------------------------------------------


@transaction.atomic
def review_resolve(*, item, reviewer, label_class, comment=""):
    """A reviewer picks the final label of a disputed (or any) item, with a comment."""
    if label_class.project_id != item.project_id:
        raise ValidationError({"label_class": ["That label class belongs to another project."]})
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": ["Say why in a comment: the labelers will read it."]})
    task = LabelTask.objects.select_for_update().get(pk=_task_for(item).pk)
    item_label_set(item=item, label_class=label_class, user=reviewer, source="review")
    Annotation.objects.filter(item=item, label_class=label_class).update(status=AnnotationStatus.ACCEPTED)
    Annotation.objects.filter(item=item).exclude(label_class=label_class).update(status=AnnotationStatus.REJECTED)
    task.state = TaskState.DONE
    task.priority = 0
    task.save(update_fields=["state", "priority", "updated_at"])
    Lease.objects.filter(task=task).delete()
    return ReviewDecision.objects.create(
        item=item, reviewer=reviewer, kind=ReviewDecision.Kind.RESOLVE, label_class=label_class, comment=comment
    )


@transaction.atomic
def annotation_review(*, annotation, reviewer, accept, comment=""):
    """Accept or reject one labeler's work. A rejected label no longer counts: the item goes back
    to the front of the queue (and loses its final label if that came from this annotation)."""
    comment = (comment or "").strip()
    if not accept and not comment:
        raise ValidationError({"comment": ["Say why you reject it: the labeler will read it."]})
    ann = Annotation.objects.select_for_update(of=("self",)).select_related("item", "label_class").get(pk=annotation.pk)
    item = ann.item
    task = LabelTask.objects.select_for_update().get(pk=_task_for(item).pk)
    ann.status = AnnotationStatus.ACCEPTED if accept else AnnotationStatus.REJECTED
    ann.save(update_fields=["status", "updated_at"])
    if not accept:
        current = ItemLabel.objects.filter(item=item).first()
        if current is not None and current.updated_by_id == ann.user_id and current.source in ("labeler", "bulk"):
            # The label this annotation replaced comes back; an item it was the first label of has none.
            _label_restore(item, undone_by=ann.user, by=reviewer, source="review")
        task.priority = max(task.priority, 50)
        task.reason = f"Rejected by {reviewer.username}: {comment}"[:200]
        task.save(update_fields=["priority", "reason", "updated_at"])
        _settle(LabelTask.objects.select_related("item").get(pk=task.pk), user=reviewer, source="review")
    return ReviewDecision.objects.create(
        item=item,
        reviewer=reviewer,
        annotation=ann,
        label_class=ann.label_class,
        comment=comment,
        kind=ReviewDecision.Kind.ACCEPT if accept else ReviewDecision.Kind.REJECT,
    )


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
