"""Registered models and their versions.

Shared contract: serving resolves and loads versions through ``selectors.version_resolve`` and
``artifacts.artifact_bytes`` (which checks sha256 on every load); monitoring reads versions'
metrics and dataset versions. Change additively.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import Record


class RegisteredModel(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="registered_models")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="uniq_registered_model_name")]

    def __str__(self):
        return self.name


class Stage(models.TextChoices):
    NONE = "none", "No stage"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"
    ARCHIVED = "archived", "Archived"


class ModelVersion(models.Model):
    """A trained model made immutable: its artifacts (by sha256), metrics, classes and input shape
    are copied from the run when it is registered."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    run = models.ForeignKey("training.TrainingRun", on_delete=models.PROTECT, related_name="model_versions")
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="model_versions"
    )
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.NONE, db_index=True)
    description = models.TextField(blank=True)
    classes = models.JSONField(default=list)  # class names in the model's output order
    # What the model expects: {"image_size": 128, "channels": 1} (the run's TrainConfig fields)
    input_spec = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)  # the run's test-split metrics at registration
    # {"keras": {"blob_id": 1, "sha256": "…", "size": 123, "filename": "model.keras"}, "savedmodel": …, "model_card": …}
    artifacts = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    stage_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "number"], name="uniq_model_version_number"),
            # At most one production version per registered model, enforced by the database.
            models.UniqueConstraint(
                fields=["registered_model"], condition=Q(stage="production"), name="one_production_version_per_model"
            ),
        ]

    def __str__(self):
        return f"{self.registered_model.name} v{self.number}"


class ModelAlias(models.Model):
    """A named pointer (e.g. ``champion``) to one version of a registered model."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.SlugField(max_length=40)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registered_model", "name"], name="uniq_model_alias")]

    def __str__(self):
        return f"{self.registered_model.name}@{self.name}"


# Promotion, approvals, settings, notifications and webhooks (issue 7) -------------------------------


class RegistrySettings(models.Model):
    """Per-project rules of promotion: how many managers must approve, and the champion/challenger
    margin (the candidate may be at most ``champion_margin`` worse than production on the gate metric)."""

    project = models.OneToOneField("projects.Project", on_delete=models.CASCADE, related_name="registry_settings")
    required_approvals = models.PositiveSmallIntegerField(default=1)
    champion_margin = models.FloatField(default=0.0)
    champion_metric = models.CharField(max_length=40, default="accuracy")
    # When on, the gate also asks every export (ONNX, LiteRT) to agree with Keras on ≥ 99 % of the test split.
    require_export_parity = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Registry settings of {self.project}"


class RequestStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class PromotionRequest(models.Model):
    """A data scientist asks for ``version`` to go to production. The automated gate's results are
    stored on the request when it is made; managers then approve or reject it."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="promotion_requests")
    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.OPEN, db_index=True)
    note = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # {"passed": bool, "checks": [{"key", "title", "status": pass|fail|not_measured, "message", ...}], ...}
    gate = models.JSONField(default=dict)
    gate_passed = models.BooleanField(default=False)
    # The production version when the request was made (the champion the gate compared against).
    champion = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    required_approvals = models.PositiveSmallIntegerField(default=1)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One open request per version: a second request finds the first.
            models.UniqueConstraint(
                fields=["version"], condition=Q(status="open"), name="one_open_request_per_version"
            ),
        ]

    def __str__(self):
        return f"Promotion request #{self.pk} for {self.version}"

    @property
    def project(self):
        return self.version.registered_model.project


class Approval(Record):
    """One manager's approval of a request (a request may need several, from different managers)."""

    request = models.ForeignKey(PromotionRequest, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    comment = models.TextField(blank=True)
    # Set when the request's gate failed: the manager's written reason for approving an exception.
    gate_exception = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "user"], name="uniq_approval_per_user")]


class Notification(models.Model):
    """An in-portal message to one user about an event in one project."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=60)
    message = models.TextField()
    url = models.CharField(max_length=500, blank=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self):
        return f"{self.event} → {self.user}"


class Webhook(models.Model):
    """An HTTP endpoint that receives the project's events, signed with HMAC-SHA256 of ``secret``."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128)
    events = models.JSONField(default=list, blank=True)  # empty: every event
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.url

    def wants(self, event):
        return self.active and (not self.events or event in self.events)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(Record):
    """One event sent to one webhook; ``attempts_log`` records every try (time, status code or error)."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=60)
    body = models.TextField()  # the exact JSON that is signed and sent
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    attempts_log = models.JSONField(default=list, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class StageChange(Record):
    """The history of a version's stage: who moved it, when and why (also in the audit log).
    Rollback reads it to find the version that was in production before the current one."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    request = models.ForeignKey(PromotionRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class ExportRun(models.Model):
    """One export of a version into another format (``onnx``), made by a worker after registration.
    queued → running → succeeded | failed. A failed export is reported with its reason and never
    touches the version's Keras artifact or its registration. ``parity`` is measured with the
    format's own runtime on the version's test split, against the Keras model."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="exports")
    kind = models.CharField(max_length=20)
    status = models.CharField(max_length=10, default="queued", db_index=True)
    error = models.TextField(blank=True)
    progress = models.FloatField(default=0.0)
    # {"n", "agreement", "max_abs_diff", "accuracy", "keras_accuracy", "runtime": "onnxruntime 1.32.0"}
    parity = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["kind"]
        constraints = [models.UniqueConstraint(fields=["version", "kind"], name="uniq_export_per_version_kind")]

    def __str__(self):
        return f"{self.kind} export of {self.version}"
