"""Label schema and the current label of every item.

Shared contract: datasets reads ``ItemLabel`` when it freezes a version and writes it when an
import brings labels from class-per-folder. Change additively.
"""

from django.conf import settings
from django.db import models

from apps.core.models import Record


class LabelClass(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="label_classes")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#2456c7")  # #rrggbb
    hotkey = models.CharField(max_length=1, blank=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="uniq_class_name"),
        ]

    def __str__(self):
        return self.name


class ItemLabel(Record):
    """The label an item carries now (what a dataset version freezes).

    ``revision`` grows with each change so that two people saving the same item at once are
    caught: a save names the revision it started from.
    """

    item = models.OneToOneField("datasets.Item", on_delete=models.CASCADE, related_name="current_label")
    label_class = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=20, default="labeler")  # labeler | review | import | bulk
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    revision = models.PositiveIntegerField(default=1)
    # Bounding boxes of defect regions: [{"x":…, "y":…, "w":…, "h":…, "class": …}] in image pixels.
    regions = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["label_class"])]


class LabelingSettings(Record):
    """How a project hands out work: overlap (N labels on a share of items), lease timeout, tools."""

    project = models.OneToOneField("projects.Project", on_delete=models.CASCADE, related_name="labeling_settings")
    overlap = models.PositiveSmallIntegerField(default=1)  # labels wanted per sampled item
    overlap_share = models.FloatField(default=0.0)  # share of items (0..1) that get `overlap` labels
    lease_seconds = models.PositiveIntegerField(default=600)  # an abandoned item returns after this
    regions_enabled = models.BooleanField(default=False)  # the "defect region" bounding-box tool
    # Items with id above this have no LabelTask yet (ids only grow, so syncing is one range query).
    synced_item_id = models.BigIntegerField(default=0)


class TaskState(models.TextChoices):
    OPEN = "open"  # wants more labels
    REVIEW = "review"  # labelers disagree: a reviewer picks the final label
    DONE = "done"


class LabelTask(Record):
    """An item's place in the labeling queue. ``priority`` > 0 puts it at the front (second looks)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    item = models.OneToOneField("datasets.Item", on_delete=models.CASCADE, related_name="label_task")
    state = models.CharField(max_length=8, choices=TaskState.choices, default=TaskState.OPEN)
    needed = models.PositiveSmallIntegerField(default=1)
    done = models.PositiveSmallIntegerField(default=0)
    priority = models.IntegerField(default=0)
    reason = models.CharField(max_length=200, blank=True)  # why it was queued for a second look
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=0)  # compare-and-set guard for claims
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["project", "state", "-priority", "id"], name="labeling_task_queue")]


class Lease(Record):
    """A labeler holds an item for a while; a skip is a lease that only hides the item from its holder."""

    task = models.ForeignKey(LabelTask, on_delete=models.CASCADE, related_name="leases")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()
    skipped = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "user"], name="uniq_lease_per_user")]
        indexes = [models.Index(fields=["user", "expires_at"])]


class AnnotationStatus(models.TextChoices):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"  # the item was queued for a second look after this label


class Annotation(Record):
    """One labeler's label for one item (several per item when the project asks for overlap)."""

    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="annotations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    label_class = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="+")
    regions = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=AnnotationStatus.choices, default=AnnotationStatus.SUBMITTED)
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "user"], name="uniq_annotation_per_user")]
        indexes = [models.Index(fields=["user", "updated_at"])]


class LabelChange(Record):
    """Every label change: who, when, old, new. ``scope`` says whether the item's final label
    changed or one labeler's annotation did."""

    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="label_changes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    scope = models.CharField(max_length=10, default="final")  # final | annotation
    source = models.CharField(max_length=20, blank=True)  # labeler | review | import | bulk | undo
    old = models.CharField(max_length=100, blank=True)  # class name, "" for none
    new = models.CharField(max_length=100, blank=True)
    old_regions = models.JSONField(default=list, blank=True)
    new_regions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-at", "-id"]


class ReviewDecision(Record):
    """A reviewer's word on an item: the final label for a disagreement, or accept/reject of one
    labeler's annotation."""

    class Kind(models.TextChoices):
        RESOLVE = "resolve"
        ACCEPT = "accept"
        REJECT = "reject"

    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="review_decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    annotation = models.ForeignKey(
        Annotation, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    label_class = models.ForeignKey(LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    comment = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
