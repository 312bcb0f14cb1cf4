"""Dataset profiles, the project's data-quality assertions and their results, and gate overrides."""

from django.conf import settings
from django.db import models

from apps.core.jobs import JobStatus
from apps.core.models import Record, TimeStampedModel


class ProfileRun(TimeStampedModel):
    """One profiling job of one dataset version: queued → running → succeeded | failed | cancelled.

    ``profile`` holds the compact result (fixed-bin histograms, quantiles, counts, duplicate groups,
    outliers); raw statistics per image live in ItemStats. Monitoring compares production inputs
    against ``profile``.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="profile_runs")
    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="profile_runs")
    status = models.CharField(max_length=10, choices=JobStatus.CHOICES, default=JobStatus.QUEUED, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    profile = models.JSONField(default=dict, blank=True)
    # {"passed": n, "failed_blocking": n, "failed_warning": n}
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one active run per version: a second start finds the first (retries never duplicate).
            models.UniqueConstraint(
                fields=["version"],
                condition=models.Q(status__in=JobStatus.ACTIVE),
                name="one_active_profile_per_version",
            ),
        ]

    def __str__(self):
        return f"Profile #{self.pk} of {self.version} ({self.status})"

    @property
    def percent(self):
        return int(100 * self.processed / self.total) if self.total else (100 if self.status == "succeeded" else 0)

    @property
    def is_active(self):
        return self.status in JobStatus.ACTIVE


class ItemStats(Record):
    """The statistics of one image as measured by one run (unique per run: a retried run skips
    what it already measured)."""

    run = models.ForeignKey(ProfileRun, on_delete=models.CASCADE, related_name="item_stats")
    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="+")
    split = models.CharField(max_length=5)
    label = models.CharField(max_length=100, blank=True)
    readable = models.BooleanField(default=True)
    error = models.CharField(max_length=300, blank=True)
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    aspect = models.FloatField(null=True)
    mode = models.CharField(max_length=12, blank=True)
    channels = models.PositiveSmallIntegerField(null=True)
    format = models.CharField(max_length=12, blank=True)
    bytes = models.BigIntegerField(null=True)
    brightness = models.FloatField(null=True)
    contrast = models.FloatField(null=True)
    sharpness = models.FloatField(null=True)
    entropy = models.FloatField(null=True)
    phash = models.CharField(max_length=64, blank=True)
    pixel_sha256 = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="uniq_stats_per_run_item")]


class Severity(models.TextChoices):
    BLOCKING = "blocking", "Blocking"
    WARNING = "warning", "Warning"


class AssertionRule(TimeStampedModel):
    """One of the project's data-quality checks with its parameters (see assertions.CHECKS)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="assertion_rules")
    check_name = models.CharField(max_length=40)
    params = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.BLOCKING)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return f"{self.check_name} ({self.severity})"


class AssertionResult(Record):
    """The outcome of one assertion on one profile run: kept per run, so a version's history shows
    what changed. The rule's check, params and severity are copied: editing rules later does not
    rewrite history."""

    run = models.ForeignKey(ProfileRun, on_delete=models.CASCADE, related_name="results")
    check_name = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    passed = models.BooleanField()
    measured = models.JSONField(null=True, blank=True)
    bound = models.CharField(max_length=200, blank=True)
    message = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]


class GateOverride(Record):
    """A data scientist let a version through the data-quality gate despite failed checks."""

    version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="gate_overrides")
    run = models.ForeignKey(ProfileRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField()
    failures = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
