"""Misclassified test images sent to labeling for a second look."""

import logging

from django.core.exceptions import ValidationError

from apps.core.audit import audit_record
from apps.datasets.models import Item
from apps.labeling.services import queue_for_review

log = logging.getLogger(__name__)

# Review --------------------------------------------------------------------------------------------


def misclassified_send_to_review(*, run, item_ids, user):
    """Queue test images the run got wrong for a second look by labelers. Returns the count queued."""
    wrong = {p["item"]: p for p in run.predictions if p["true"] != p["pred"]}
    bad = [i for i in item_ids if i not in wrong]
    if bad:
        raise ValidationError({"items": [f"Item {bad[0]} is not a misclassified test image of {run}."]})
    classes = run.test_metrics.get("classes") or run.dataset_version.classes
    queued = 0
    for item in Item.objects.filter(pk__in=item_ids, project=run.project):
        p = wrong[item.pk]
        reason = (
            f"Run {run.pk} predicted {classes[p['pred']]} ({p['confidence']:.0%}) for a test image "
            f"labeled {classes[p['true']]}"
        )
        queue_for_review(item=item, reason=reason, requested_by=user)
        queued += 1
    audit_record(
        actor=user,
        action="training_run.review_requested",
        project=run.project,
        obj=run,
        data={"items": list(item_ids), "queued": queued},
    )
    return queued
