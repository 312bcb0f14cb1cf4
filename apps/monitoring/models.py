"""Monitoring: per-minute rollups (what the charts read), infrastructure samples, drift reports,
alert rules, alerts with their incident timelines, live-accuracy samples and retraining requests."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.jobs import JobStatus
from apps.core.models import Record


class PredictionRollup(Record):
    """The predictions of one model version in one minute, kept up to date as batches arrive
    (``predictions_logged``). Histograms use fixed bins (``rollups.LATENCY_EDGES``,
    ``rollups.CONFIDENCE_EDGES`` and ``imagestats.BINS``) so minutes add up bin for bin."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    low_confidence = models.PositiveIntegerField(default=0)
    latency_sum = models.FloatField(default=0)
    latency_hist = models.JSONField(default=list)
    confidence_hist = models.JSONField(default=list)
    class_counts = models.JSONField(default=dict)
    stats_hist = models.JSONField(default=dict)  # {stat: [counts in imagestats.BINS[stat]]}

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "minute"], name="uniq_rollup_version_minute")]
        indexes = [models.Index(fields=["project", "minute"])]


class EndpointRollup(Record):
    """HTTP requests of one URL route (its name, not the raw path) in one minute, from the middleware."""

    endpoint = models.CharField(max_length=120)
    minute = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)  # 5xx responses and unhandled exceptions
    latency_sum = models.FloatField(default=0)
    latency_hist = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "minute"], name="uniq_endpoint_minute")]


class InfraSample(Record):
    """One look at the infrastructure, taken by beat every minute."""

    taken_at = models.DateTimeField(unique=True)
    queues = models.JSONField(default=dict)  # {queue: depth}
    workers = models.JSONField(default=list)  # [{hostname, last_seen, active, queues}]
    live_workers = models.PositiveIntegerField(default=0)
    jobs = models.JSONField(default=dict)  # {"ImportJob": {"running": n, "failed": n}, …}
    storage = models.JSONField(default=dict)  # {"images": bytes, "thumbnails": bytes, "artifacts": bytes}
    health = models.JSONField(default=dict)  # {"database": {"ok": true, "ms": 1.2, "detail": ""}, "broker": …}

    class Meta:
        ordering = ["-taken_at"]


class DriftReport(Record):
    """Production inputs of one model version on one day against the training profile."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    n = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict)  # {stat: {"psi": .., "ks": .., "ks_p": ..}}
    max_psi = models.FloatField(null=True)
    max_ks = models.FloatField(null=True)
    embedding_mmd = models.FloatField(null=True)
    embedding_n = models.PositiveIntegerField(default=0)
    reference = models.JSONField(default=dict)  # {"profile_run": id, "group": "split:train", "n": ..}
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["model_version", "day"], name="uniq_drift_version_day")]


class ReferenceEmbedding(Record):
    """The model's own penultimate-layer embeddings of its training split (a Celery job)."""

    model_version = models.OneToOneField("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=JobStatus.CHOICES, default=JobStatus.QUEUED, db_index=True)
    vectors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)


class RuleKind(models.TextChoices):
    INPUT_DRIFT = "input_drift", "Input drift (max PSI over statistics)"
    INPUT_DRIFT_KS = "input_drift_ks", "Input drift (max KS distance)"
    EMBEDDING_DRIFT = "embedding_drift", "Embedding drift (MMD²)"
    LIVE_ACCURACY = "live_accuracy", "Live accuracy under"
    ERROR_RATE = "error_rate", "Error rate over"
    LATENCY_P95 = "latency_p95", "p95 latency (ms) over"
    WORKER_DOWN = "worker_down", "Live workers under"
    QUEUE_BACKLOG = "queue_backlog", "Queue depth over"
    LOG_LOSS = "log_loss", "Prediction log rows lost over"


class AlertRule(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    threshold = models.FloatField()
    # window_minutes, min_n, endpoint ("serving" = the prediction log), queue
    params = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    retrain = models.BooleanField(default=False)  # start a retraining run when it fires
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


OPEN_ALERT = (AlertStatus.FIRING, AlertStatus.ACKNOWLEDGED)


class Alert(models.Model):
    """An incident opened by a rule: firing → acknowledged → resolved (compare-and-set, audited)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="alerts")
    rule = models.ForeignKey(AlertRule, null=True, on_delete=models.SET_NULL, related_name="alerts")
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=13, choices=AlertStatus.choices, default=AlertStatus.FIRING, db_index=True)
    value = models.FloatField(null=True)
    threshold = models.FloatField(null=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True)
    recovered_at = models.DateTimeField(null=True, blank=True)  # the condition cleared (still needs resolving)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"], condition=Q(status__in=["firing", "acknowledged"]), name="one_open_alert_per_rule"
            )
        ]

    def __str__(self):
        return f"Alert #{self.pk} {self.title} ({self.status})"


class IncidentEvent(Record):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=20)  # opened | acknowledged | resolved | recovered | notified | retrain
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]


class LiveSample(Record):
    """A production input sent to labeling so the model's live accuracy can be measured."""

    prediction = models.OneToOneField("serving.PredictionLog", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey("datasets.Item", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16)  # low_confidence | random
    predicted_class = models.CharField(max_length=100)
    predicted_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["project", "predicted_at"])]


class RetrainStatus(models.TextChoices):
    PROFILING = "profiling", "Profiling the new version"
    LAUNCHED = "launched", "Training run launched"
    FAILED = "failed", "Failed"


class Retrain(Record):
    """A rule asked for retraining: new dataset version → its profile (the gate) → a normal run."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="retrains")
    dataset_version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.CASCADE, related_name="+")
    base_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    profile_run = models.ForeignKey(
        "profiling.ProfileRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey("training.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=RetrainStatus.choices, default=RetrainStatus.PROFILING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
