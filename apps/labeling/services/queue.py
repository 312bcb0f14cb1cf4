"""The labeling queue: tasks, leases, skips, and second looks other stages ask for."""

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core import sql
from apps.core.audit import audit_record
from apps.datasets.models import Item

from ..models import (
    Annotation,
    AnnotationStatus,
    ItemLabel,
    LabelingSettings,
    LabelTask,
    Lease,
    TaskState,
)
from .schema import labeling_settings_for

COUNTED = (AnnotationStatus.SUBMITTED, AnnotationStatus.ACCEPTED)  # annotations that still count


# Queue --------------------------------------------------------------------------------------------


def _sampled(sha256, share):
    """Deterministic sample membership from the content hash (the same item always decides alike)."""
    return share > 0 and int(sha256[:8], 16) / 0x100000000 < share


def _settings_if_synced(project):
    """The project's LabelingSettings when no item waits for a task, else None: one query (the
    settings row and an EXISTS on the (project, id) index), the usual case on every "next item"."""

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
