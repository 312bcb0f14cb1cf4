"""The prediction log: one row per prediction. Shared contract with monitoring, which listens to
``apps.serving.signals.predictions_logged`` to keep its rollups. Change additively."""

from django.conf import settings
from django.db import models

from apps.core.models import Record


class PredictionLog(Record):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="predictions")
    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="predictions"
    )
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="predictions")
    created_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=64, db_index=True)
    route = models.CharField(max_length=10, default="production")  # production | canary | shadow | pinned
    latency_ms = models.FloatField()
    input_sha256 = models.CharField(max_length=64)
    # The statistics the profile uses (apps.profiling.imagestats): width, height, brightness, contrast, sharpness, entropy…
    input_stats = models.JSONField(default=dict)
    predicted_class = models.CharField(max_length=100)
    confidence = models.FloatField()
    probabilities = models.JSONField(default=dict)  # {"good": 0.97, "defect": 0.03}
    # Kept for a sample of inputs and for every low-confidence one, to be labeled later.
    input_blob = models.ForeignKey("core.Blob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Production embeddings (penultimate layer), kept compactly for embedding-drift checks; may be empty.
    embedding = models.JSONField(default=list, blank=True)
    # The image's position in its request: a shadow row pairs with the production row of the same
    # input by (request_id, batch_index).
    batch_index = models.PositiveSmallIntegerField(default=0)
    # The row's own key, given when it is spooled (apps.serving.logwriter): a replay of the spool after
    # a crash never writes a row twice. Not the request id: a client may send the same X-Request-ID
    # again (a retry), and both answers are logged. Empty (NULL) on rows older than the spool.
    log_key = models.CharField(max_length=32, null=True, blank=True, unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "created_at"]),
            models.Index(fields=["model_version", "created_at"]),
        ]


class PredictionLogLoss(Record):
    """Prediction log rows that could not be kept (the spool full, the disk full, a row the database
    refused), counted exactly: the predictions were answered, their rows are gone. Monitoring alerts
    on them (``predictions_lost``) and shows them on its page."""

    project = models.ForeignKey("projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    registered_model = models.ForeignKey(
        "registry.RegisteredModel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.CharField(max_length=100)
    count = models.PositiveIntegerField()
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]


# Routing and tokens (issue 8) --------------------------------------------------------------------------


class RouteMode(models.TextChoices):
    OFF = "off", "Production only"
    CANARY = "canary", "Canary: answer a share of requests from the candidate"
    SHADOW = "shadow", "Shadow: send every request to the candidate too, answer from production"


class ServingRoute(models.Model):
    """How one registered model's default (unpinned) traffic is routed beside production."""

    registered_model = models.OneToOneField(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="serving_route"
    )
    mode = models.CharField(max_length=10, choices=RouteMode.choices, default=RouteMode.OFF)
    candidate = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    canary_share = models.FloatField(default=0.1)  # 0..1, canary mode only
    # keras: the .keras model in TensorFlow; onnx: the version's ONNX export in ONNX Runtime
    engine = models.CharField(
        max_length=10, choices=[("keras", "Keras (TensorFlow)"), ("onnx", "ONNX Runtime")], default="keras"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.registered_model} route: {self.mode}"


class TokenScope(models.TextChoices):
    PREDICT = "predict", "Call the prediction API"
    READ = "read", "Read serving data (routes, comparison, prediction log)"


class ProjectToken(models.Model):
    """An API token that belongs to a project (a client application, not a person). Only its sha256 is
    stored; the key is shown once. ``rate_per_minute`` caps its requests (429 beyond)."""

    PREFIX = "mlpp_"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="serving_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    key_prefix = models.CharField(max_length=14)
    scopes = models.JSONField(default=list)
    rate_per_minute = models.PositiveIntegerField(null=True, blank=True)  # None: the SERVING_RATE_PER_MINUTE default
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"

    def allows(self, scope, project=None):
        if project is not None and project.pk != self.project_id:
            return False
        return scope in self.scopes
