from django.contrib import admin

from .models import (
    Approval,
    ModelAlias,
    ModelVersion,
    Notification,
    PromotionRequest,
    RegisteredModel,
    RegistrySettings,
    StageChange,
    Webhook,
    WebhookDelivery,
)


class ReadOnlyMixin:
    """Versions, requests and their history are written by services only (audit, constraints)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "created_at")
    list_filter = ("project",)


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("registered_model", "number", "stage", "dataset_version", "created_at")
    list_filter = ("stage",)


@admin.register(PromotionRequest)
class PromotionRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "version", "status", "gate_passed", "requested_by", "decided_by", "created_at")
    list_filter = ("status", "gate_passed")


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("url", "project", "active", "created_at")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("webhook", "event", "status", "attempts", "created_at", "delivered_at")
    list_filter = ("status",)


admin.site.register([ModelAlias, Approval, StageChange, Notification])
admin.site.register(RegistrySettings)
