from django.contrib import admin

from .models import Alert, AlertRule, IncidentEvent, InfraSample, Retrain


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "kind", "threshold", "enabled", "retrain", "last_value")
    list_filter = ("kind", "enabled")


class IncidentEventInline(admin.TabularInline):
    model = IncidentEvent
    extra = 0


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "title", "status", "opened_at")
    list_filter = ("status",)
    inlines = [IncidentEventInline]


admin.site.register(InfraSample)
admin.site.register(Retrain)
