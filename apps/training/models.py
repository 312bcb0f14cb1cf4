"""Training runs, sweeps, per-epoch metrics and stored artifacts.

Runs and sweeps move queued → running → succeeded | failed | cancelled by compare-and-set
(apps.core.jobs); a running run beats ``heartbeat_at`` and is registered with the reaper.
"""

from django.conf import settings
from django.db import models

from apps.core.jobs import JobStatus
from apps.core.models import Record, TimeStampedModel


class Sweep(TimeStampedModel):
    """A grid or random search: N child runs, the best picked by ``metric`` on the validation split."""

    GRID, RANDOM = "grid", "random"
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="sweeps")
    dataset_version = models.ForeignKey("datasets.DatasetVersion", on_delete=models.PROTECT, related_name="sweeps")
    name = models.CharField(max_length=120, blank=True)
    method = models.CharField(max_length=10, choices=[(GRID, "grid"), (RANDOM, "random")])
    base_config = models.JSONField(default=dict)
    space = models.JSONField(default=dict)  # {"learning_rate": [0.001, 0.0003], ...}
    max_trials = models.PositiveIntegerField(default=4)
    metric = models.CharField(max_length=30, default="val_accuracy")
    status = models.CharField(max_length=10, choices=JobStatus.CHOICES, default=JobStatus.QUEUED, db_index=True)
    best_run = models.ForeignKey("TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"Sweep #{self.pk} {self.name}".strip()

    @property
    def higher_is_better(self):
        return not self.metric.endswith("loss")


class TrainingRun(TimeStampedModel):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="training_runs")
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="training_runs"
    )
    sweep = models.ForeignKey(Sweep, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    trial_index = models.PositiveIntegerField(null=True, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    name = models.CharField(max_length=120, blank=True)
    config = models.JSONField(default=dict)  # TrainConfig.to_dict(): every hyperparameter and the seed
    base_model = models.ForeignKey(
        "core.Blob", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # fine-tuning: the uploaded .keras file
    queue = models.CharField(max_length=20, default="training")
    status = models.CharField(max_length=10, choices=JobStatus.CHOICES, default=JobStatus.QUEUED, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    # progress: epochs done, batch within the current epoch
    epochs_total = models.PositiveIntegerField(default=0)
    epochs_done = models.PositiveIntegerField(default=0)
    current_batch = models.PositiveIntegerField(default=0)
    batches_per_epoch = models.PositiveIntegerField(default=0)
    seconds_per_epoch = models.FloatField(null=True, blank=True)
    # results
    best_val = models.JSONField(default=dict, blank=True)  # {"val_accuracy": 0.93, "val_loss": 0.2, "epoch": 12}
    test_metrics = models.JSONField(default=dict, blank=True)  # see ml.evaluate.classification_metrics
    predictions = models.JSONField(default=list, blank=True)  # [{"item": id, "true", "pred", "confidence"}]
    training_seconds = models.FloatField(null=True, blank=True)
    # said before launch (apps.training.estimate): the expected wall time and what it rests on
    estimated_seconds = models.FloatField(null=True, blank=True)
    estimate_basis = models.CharField(max_length=200, blank=True)
    epochs_run = models.PositiveIntegerField(default=0)
    model_card = models.JSONField(default=dict, blank=True)
    code_version = models.CharField(max_length=64, blank=True)
    tf_version = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["sweep", "trial_index"], name="uniq_sweep_trial")]

    def __str__(self):
        return f"Run #{self.pk}" + (f" {self.name}" if self.name else "")

    @property
    def is_active(self):
        return self.status in JobStatus.ACTIVE

    @property
    def progress(self):
        """0..1: epochs done plus the fraction of the current epoch."""
        if not self.epochs_total:
            return 0.0
        if self.status == JobStatus.SUCCEEDED:
            return 1.0
        within = self.current_batch / self.batches_per_epoch if self.batches_per_epoch else 0.0
        return min(1.0, (self.epochs_done + min(within, 1.0)) / self.epochs_total)

    @property
    def eta_seconds(self):
        if self.status != JobStatus.RUNNING or not self.seconds_per_epoch:
            return None
        return max(0.0, (self.epochs_total * (1 - self.progress)) * self.seconds_per_epoch)


class EpochMetric(Record):
    """One epoch's end: loss, accuracy, val_loss, val_accuracy and any other metric Keras logged."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="epochs")
    epoch = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict)
    seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "epoch"]
        constraints = [models.UniqueConstraint(fields=["run", "epoch"], name="uniq_run_epoch")]


class Artifact(models.Model):
    """A file a run produced, stored once by sha256 (apps.core Blob) through Django storage."""

    KINDS = [
        ("keras", "Keras model (.keras)"),
        ("savedmodel", "SavedModel (zip)"),
        ("model_card", "Model card (JSON)"),
        ("onnx", "ONNX model (.onnx, float32)"),
        ("litert_f32", "LiteRT model (.tflite, float32)"),
        ("litert_int8", "LiteRT model (.tflite, int8)"),
    ]
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(max_length=20, choices=KINDS)
    blob = models.ForeignKey("core.Blob", on_delete=models.PROTECT, related_name="+")
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    filename = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "kind"], name="uniq_run_artifact")]

    def __str__(self):
        return f"{self.kind} of run {self.run_id}"


class BackboneWeights(models.Model):
    """A pretrained backbone's weights in the portal's own store (one row per catalogue name).

    Added by a site admin (page or API) or by ``manage.py backbone_fetch``; the source file was checked
    against the hash the catalogue lists before the Keras weights file (``blob``) was stored. A run
    reads the blob; nothing downloads at training time."""

    name = models.CharField(max_length=40, unique=True)  # apps.training.ml.backbones.CATALOGUE key
    blob = models.ForeignKey("core.Blob", on_delete=models.PROTECT, related_name="+")
    source_hash = models.CharField(max_length=64)  # of the file that was checked (catalogue's algorithm)
    source_sha256 = models.CharField(max_length=64)  # of the same file
    method = models.CharField(max_length=10)  # upload | fetch | package
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.name} weights"
