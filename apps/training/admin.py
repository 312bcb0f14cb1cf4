from django.contrib import admin

from .models import Artifact, BackboneWeights, EpochMetric, Sweep, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "dataset_version", "status", "queue", "created_at", "finished_at"]
    list_filter = ["status", "queue"]
    readonly_fields = ["log", "test_metrics", "model_card"]


admin.site.register(Sweep)
admin.site.register(EpochMetric)
admin.site.register(Artifact)
admin.site.register(BackboneWeights)
