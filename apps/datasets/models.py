"""Items are content-addressed images; versions are immutable labeled snapshots of them.

Shared contract: other apps (labeling, profiling, training, serving) read these models. Change
them additively.
"""

import uuid

from django.conf import settings
from django.db import models

from apps.core.models import Blob, Record, TimeStampedModel


class Item(TimeStampedModel):
    """One image in a project, unique by content (sha256) within the project."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="items")
    sha256 = models.CharField(max_length=64)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="items")
    thumbnail = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    mode = models.CharField(max_length=12)  # Pillow mode: L, RGB, RGBA…
    format = models.CharField(max_length=12)  # PNG, JPEG…
    bytes = models.BigIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    import_job = models.ForeignKey("ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    # Where the item came from when not an upload (e.g. "prediction" for production inputs).
    source = models.CharField(max_length=20, default="upload")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "sha256"], name="uniq_item_per_project")]
        indexes = [models.Index(fields=["project", "id"])]

    def __str__(self):
        return self.original_name or self.sha256[:12]


class ImportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(TimeStampedModel):
    """queued → running → done | failed, with a result per file (ImportFile)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED, db_index=True)
    source = models.CharField(max_length=20, default="upload")  # upload | zip | folder | api
    labels_from_folders = models.BooleanField(default=False)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # Files that are not images (a README, a CSV, .DS_Store inside a zip or a folder): counted, not imported.
    skipped = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Import #{self.pk} ({self.status})"


class ImportFileResult(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class ImportFile(Record):
    """One file of an import: where it waits (staged path) and what became of it."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=500)  # as the user gave it (relative path inside a zip)
    staged_path = models.CharField(max_length=500, blank=True)  # storage name while pending
    label = models.CharField(max_length=100, blank=True)  # from class-per-folder, when asked
    result = models.CharField(max_length=10, choices=ImportFileResult.choices, default=ImportFileResult.PENDING)
    reason = models.CharField(max_length=300, blank=True)
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # An archive row is unpacked into image rows (archive_member = the entry's name inside it,
    # staged_path = the archive's staged file); it never becomes an item itself.
    kind = models.CharField(max_length=8, default="image")  # image | archive
    archive_member = models.CharField(max_length=500, blank=True)
    archive_name = models.CharField(max_length=500, blank=True)  # the archive this entry came from, as uploaded
    size = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["job", "result"])]


class Upload(models.Model):
    """A resumable upload: the client sends chunks at the offset the server reports, and may
    ask for that offset again after a dropped connection. Chunks are stored as parts through the
    storage API and joined into one staged file when the last byte arrives."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    filename = models.CharField(max_length=500)
    size = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    parts = models.JSONField(default=list)  # storage names of the received chunks, in order
    staged_path = models.CharField(max_length=500, blank=True)  # set once complete
    job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.filename} ({self.offset}/{self.size})"

    @property
    def complete(self):
        return self.offset >= self.size and bool(self.staged_path)


class VersionStatus(models.TextChoices):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class Split(models.TextChoices):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class DatasetVersion(TimeStampedModel):
    """An immutable snapshot of items and their labels: building → ready (then immutable) | failed."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="dataset_versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=120, blank=True)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.BUILDING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    seed = models.IntegerField(default=0)
    fractions = models.JSONField(default=dict)  # {"train": 0.7, "val": 0.15, "test": 0.15}
    # "seeded": stratified and seeded; "folders": the split the upload's train/ val/ test/ folders gave
    # (items under none of them split seeded among themselves).
    split_from = models.CharField(max_length=10, default="seeded")
    content_hash = models.CharField(max_length=64, blank=True)
    item_count = models.PositiveIntegerField(default=0)
    # {"train": {"good": 252, "defect": 83}, "val": {...}, "test": {...}}
    counts = models.JSONField(default=dict)
    classes = models.JSONField(default=list)  # label names in index order: the model's class order
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="uniq_version_number")]

    def __str__(self):
        return f"{self.project.slug} v{self.number}"


class VersionItem(Record):
    """One item frozen into a version, with its label and split at that moment."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="entries")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="version_entries")
    split = models.CharField(max_length=5, choices=Split.choices)
    label = models.CharField(max_length=100)
    # The labelers' boxes at that moment: [{"x", "y", "w", "h", "class"?}] in image pixels.
    regions = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "item"], name="uniq_item_per_version")]
        indexes = [models.Index(fields=["version", "split", "label"])]
