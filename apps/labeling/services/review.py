"""Review: the final word on disagreements, and accepting or rejecting one labeler's annotation."""

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import (
    Annotation,
    AnnotationStatus,
    ItemLabel,
    LabelTask,
    Lease,
    ReviewDecision,
    TaskState,
)
from .annotations import _label_restore, _settle
from .labels import item_label_set
from .queue import _task_for

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
