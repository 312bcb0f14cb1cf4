"""Reads of the labeling app, always scoped to a project the caller belongs to."""

import functools
import json
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Max, Min
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone

from apps.core.stages import StageSpan, StageState
from apps.datasets.labels import LabelReader
from apps.datasets.models import Item

from .agreement import agreement_summary, box_agreement, box_pair, group_labels
from .models import (
    Annotation,
    AnnotationStatus,
    ItemLabel,
    LabelChange,
    LabelClass,
    LabelTask,
    ReviewDecision,
    TaskState,
)
from .services import COUNTED


def classes_of(project):
    return list(LabelClass.objects.filter(project=project))


def class_json(c):
    return {"id": c.pk, "name": c.name, "color": c.color, "hotkey": c.hotkey, "order": c.order}


_MISSING = object()


def _image_urls(project_slug):
    """URL templates of an item's image and thumbnail; the item id is swapped in per item."""
    return _image_urls_in(project_slug, settings.ROOT_URLCONF, get_urlconf(), get_script_prefix())


@functools.lru_cache(maxsize=1024)
def _image_urls_in(project_slug, root_urlconf, urlconf, prefix):
    # Cached per URL configuration: a reverse() costs as much as a hot-path query.
    image = reverse("datasets-item-image", args=[project_slug, 0]).replace("/0/", "/{}/")
    return image, image.replace("/image", "/thumb")


def item_payload(item, *, user, project_slug, task=None, label=_MISSING, mine=_MISSING, urls=None):
    """What the workspace needs to show one item. ``label`` (ItemLabel) and ``mine`` (the user's
    Annotation) may be given, None included, to save the queries."""
    if label is _MISSING:
        label = ItemLabel.objects.select_related("label_class", "updated_by").filter(item=item).first()
    if mine is _MISSING:
        mine = Annotation.objects.filter(item=item, user=user).select_related("label_class").first()
    image, thumb = urls or _image_urls(project_slug)
    return {
        "id": item.pk,
        "name": str(item),
        "width": item.width,
        "height": item.height,
        "image": image.format(item.pk),
        "thumb": thumb.format(item.pk),
        "revision": label.revision if label else 0,
        "label": label.label_class.name if label else None,
        "label_by": label.updated_by.username if label and label.updated_by else None,
        "regions": (mine.regions if mine else (label.regions if label else [])),
        "mine": mine.label_class.name if mine and mine.status in COUNTED else None,
        "reason": task.reason if task else "",
    }


def queue_payload(project, user, task_ids):
    """``item_payload`` for each of ``task_ids`` (in that order) from one query: the task, its item's
    few fields the workspace shows, the current label and the caller's own annotation."""
    if not task_ids:
        return []
    from django.contrib.auth import get_user_model
    from django.db import connection

    def table(model):
        return model._meta.db_table

    sql = f"""
        SELECT t.id, t.reason, i.id, i.original_name, i.sha256, i.width, i.height,
               l.revision, lc.name, u.username, l.regions, a.status, ac.name, a.regions
        FROM {table(LabelTask)} t
        JOIN {table(Item)} i ON i.id = t.item_id
        LEFT JOIN {table(ItemLabel)} l ON l.item_id = i.id
        LEFT JOIN {table(LabelClass)} lc ON lc.id = l.label_class_id
        LEFT JOIN {table(get_user_model())} u ON u.id = l.updated_by_id
        LEFT JOIN {table(Annotation)} a ON a.item_id = i.id AND a.user_id = %s
        LEFT JOIN {table(LabelClass)} ac ON ac.id = a.label_class_id
        WHERE t.project_id = %s AND t.id IN ({", ".join(["%s"] * len(task_ids))})"""
    with connection.cursor() as cur:
        cur.execute(sql, [user.pk, project.pk, *task_ids])
        rows = {r[0]: r for r in cur.fetchall()}
    image, thumb = _image_urls(project.slug)
    out = []
    for t in task_ids:
        if t not in rows:
            continue
        (
            _,
            reason,
            pk,
            name,
            sha,
            width,
            height,
            revision,
            label,
            label_by,
            label_regions,
            mine_status,
            mine_label,
            mine_regions,
        ) = rows[t]
        regions = mine_regions if mine_status is not None else (label_regions if revision is not None else None)
        out.append(
            {
                "id": pk,
                "name": name or sha[:12],
                "width": width,
                "height": height,
                "image": image.format(pk),
                "thumb": thumb.format(pk),
                "revision": revision or 0,
                "label": label,
                "label_by": label_by,
                "regions": json.loads(regions) if isinstance(regions, str) else (regions or []),
                "mine": mine_label if mine_status in COUNTED else None,
                "reason": reason,
            }
        )
    return out


def progress_for(project, user, *, mine_only=False):
    """Done by ``user`` today, left in the project, and their rate (labels per hour today).

    ``mine_only``: just the first two, which ride the (user, updated_at) index; the project's counts
    scan its items and tasks (~25 ms at 100,000 items), so the workspace asks for them less often."""
    now = timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Annotation.objects.filter(user=user, item__project=project, updated_at__gte=start)
    today = mine.count()
    first = mine.order_by("updated_at").values_list("updated_at", flat=True).first()
    hours = max((now - first).total_seconds() / 3600, 1 / 60) if first else None
    if mine_only:
        return {"today": today, "rate_per_hour": round(today / hours) if hours else 0}
    states = dict(LabelTask.objects.filter(project=project).values_list("state").annotate(n=Count("id")))

    total = Item.objects.filter(project=project).count()
    labeled = ItemLabel.objects.filter(item__project=project).count()
    # Items not yet in the queue (a fresh import: tasks are made on the next queue read) count as left
    # only when unlabeled; an import that brought labels leaves nothing to do.
    untasked = Item.objects.filter(project=project, label_task__isnull=True, current_label__isnull=True).count()
    return {
        "today": today,
        "rate_per_hour": round(today / hours) if hours else 0,
        "left": states.get(TaskState.OPEN, 0) + untasked,
        "review": states.get(TaskState.REVIEW, 0),
        "labeled": labeled,
        "total": total,
    }


def agreement_for(project):
    """Class agreement (kappa) and, where labelers drew boxes, box agreement (IoU) on shared items."""
    rows = list(
        Annotation.objects.filter(item__project=project, status__in=COUNTED + (AnnotationStatus.REJECTED,)).values_list(
            "item_id", "user__username", "label_class__name", "regions"
        )
    )
    out = agreement_summary(group_labels([r[:3] for r in rows]), [c.name for c in classes_of(project)])
    boxes = {}
    for item_id, user, _, regions in rows:
        boxes.setdefault(item_id, {})[user] = regions or []
    out["boxes"] = box_agreement(boxes)
    return out


def review_queue(project, limit=50):
    """Disputed items with every labeler's annotation."""
    tasks = list(
        LabelTask.objects.filter(project=project, state=TaskState.REVIEW)
        .select_related("item")
        .order_by("-priority", "id")[:limit]
    )
    anns = {}
    for a in (
        Annotation.objects.filter(item__in=[t.item for t in tasks])
        .select_related("user", "label_class")
        .order_by("updated_at")
    ):
        anns.setdefault(a.item_id, []).append(a)
    out = []
    for t in tasks:
        mine = anns.get(t.item_id, [])
        drawn = [a for a in mine if a.regions]
        out.append(
            {
                "task": t,
                "item": t.item,
                "annotations": mine,
                "replaced": _replacement(t.item),
                # Where labelers drew boxes, the reviewer sees them all and how well they overlap.
                "boxes": drawn,
                "box_pair": box_pair(mine[0].regions, mine[1].regions) if len(mine) >= 2 and drawn else None,
            }
        )
    return out


def _replacement(item):
    """When a labeler replaced someone else's label: both labels and who gave each (else None)."""
    changes = list(
        LabelChange.objects.filter(item=item, scope="final").select_related("user").order_by("-at", "-id")[:20]
    )
    last = next((c for c in changes if c.old and c.new and c.old != c.new), None)
    if last is None:
        return None
    earlier = next((c for c in changes if c.new == last.old and (c.at, c.id) < (last.at, last.id)), None)
    return {
        "before": last.old,
        "before_by": (earlier.user.username if earlier and earlier.user else "") or "",
        "before_source": earlier.source if earlier else "",
        "after": last.new,
        "after_by": last.user.username if last.user else "",
        "at": last.at,
    }


def recent_annotations(project, labeler=None, limit=60):
    qs = (
        Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
        .select_related("user", "label_class", "item")
        .order_by("-updated_at")
    )
    if labeler:
        qs = qs.filter(user__username=labeler)
    return list(qs[:limit])


def history_of(item, limit=100):
    return list(LabelChange.objects.filter(item=item).select_related("user")[:limit])


def decisions_of(project, limit=20):
    return list(
        ReviewDecision.objects.filter(item__project=project).select_related(
            "reviewer", "label_class", "item", "annotation__user"
        )[:limit]
    )


def grid_items(project, *, show="unlabeled", offset=0, limit=120):

    qs = Item.objects.filter(project=project).select_related("current_label__label_class").order_by("id")
    if show == "unlabeled":
        qs = qs.filter(current_label__isnull=True)
    elif show not in ("all", ""):
        qs = qs.filter(current_label__label_class__name=show)
    return list(qs[offset : offset + limit]), qs.count()


def labeling_stage(project):
    """The project page's Labeling card: "340 of 480 labeled"."""

    total = Item.objects.filter(project=project).count()
    if total == 0:
        return StageState("not_started", "No images yet")
    labeled = ItemLabel.objects.filter(item__project=project).count()
    review = LabelTask.objects.filter(project=project, state=TaskState.REVIEW).count()
    summary = f"{labeled} of {total} labeled" + (f" · {review} to review" if review else "")
    if review:
        return StageState("attention", summary)
    return StageState("done" if labeled >= total else ("in_progress" if labeled else "not_started"), summary)


def labeling_stage_span(project):
    """Labeling began with the first label change and was done when every item carried a label."""
    started = LabelChange.objects.filter(item__project=project).aggregate(t=Min("at"))["t"]
    total = Item.objects.filter(project=project).count()
    labels = ItemLabel.objects.filter(item__project=project).aggregate(n=Count("id"), t=Max("updated_at"))
    return StageSpan(started, labels["t"] if total and labels["n"] >= total else None)


class ItemLabels(LabelReader):
    """The data stage's view of labels (registered at start: datasets never imports labeling)."""

    def current(self, project):
        return list(
            ItemLabel.objects.filter(item__project=project).values_list(
                "item_id", "item__sha256", "label_class__name", "item__original_name"
            )
        )

    def regions(self, project):
        rows = ItemLabel.objects.filter(item__project=project).values_list("item_id", "regions")
        return {pk: regions for pk, regions in rows.iterator(chunk_size=2000) if regions}

    def count(self, project):
        return ItemLabel.objects.filter(item__project=project).count()

    def names(self, project):
        return list(LabelClass.objects.filter(project=project).values_list("name", flat=True))


def reviewer_rates(project):
    """Per labeler: how many of their labels reviewers accepted and rejected, and the share rejected."""
    rows = {}
    decided = (
        ReviewDecision.objects.filter(
            item__project=project, kind__in=[ReviewDecision.Kind.ACCEPT, ReviewDecision.Kind.REJECT]
        )
        .exclude(annotation__user=None)
        .values_list("annotation__user__username", "kind")
        .annotate(n=Count("id"))
    )
    for username, kind, n in decided:
        r = rows.setdefault(username, {"labeler": username, "accepted": 0, "rejected": 0})
        r["accepted" if kind == ReviewDecision.Kind.ACCEPT else "rejected"] += n
    for r in rows.values():
        r["rejected_share"] = round(r["rejected"] / (r["accepted"] + r["rejected"]), 3)
    return sorted(rows.values(), key=lambda r: (-r["rejected_share"], r["labeler"]))


def labeler_page(project, user, *, days=7):
    """One labeler's work in ``project``: their labels by status and class, their pace, the labels
    reviewers rejected and why, and how well they agree with each other labeler (classes and boxes)."""
    mine = Annotation.objects.filter(item__project=project, user=user)
    by_status = dict.fromkeys(AnnotationStatus.values, 0)
    for status, n in mine.values_list("status").annotate(n=Count("id")).values_list("status", "n"):
        by_status[status] = n
    since = timezone.now() - timedelta(days=days)
    rejected = list(
        ReviewDecision.objects.filter(item__project=project, kind=ReviewDecision.Kind.REJECT, annotation__user=user)
        .select_related("reviewer", "item", "annotation__label_class")
        .order_by("-at")[:100]
    )
    agreement = agreement_for(project)
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_class": list(
            mine.values_list("label_class__name")
            .annotate(n=Count("id"))
            .order_by("-n")
            .values_list("label_class__name", "n")
        ),
        "recent": mine.filter(updated_at__gte=since).count(),
        "days": days,
        "rejected": rejected,
        "pairs": [p for p in agreement["pairs"] if user.username in (p["a"], p["b"])],
        "box_pairs": [p for p in agreement["boxes"]["pairs"] if user.username in (p["a"], p["b"])],
        "rates": next((r for r in reviewer_rates(project) if r["labeler"] == user.username), None),
    }
