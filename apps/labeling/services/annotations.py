"""Labelers' annotations: submit, undo, and settling an item when enough labelers agree."""

import json
from datetime import timedelta
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core import sql

from ..models import (
    Annotation,
    AnnotationStatus,
    ItemLabel,
    LabelChange,
    LabelClass,
    LabelTask,
    Lease,
    TaskState,
)
from .labels import LabelConflict, _conflict_message, _record, item_label_clear, item_label_set, regions_clean
from .queue import COUNTED, _task_for
from .schema import labeling_settings_for


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
