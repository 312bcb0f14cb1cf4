"""The prediction log: one row per prediction. Shared contract with monitoring, which listens to
``apps.serving.signals.predictions_logged`` to keep its rollups. Change additively."""
from django.db import models


class PredictionLog(models.Model):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="predictions")
    registered_model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="predictions")
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
    input_blob = models.ForeignKey("datasets.Blob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Production embeddings (penultimate layer), kept compactly for embedding-drift checks; may be empty.
    embedding = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "created_at"]),
            models.Index(fields=["model_version", "created_at"]),
        ]
