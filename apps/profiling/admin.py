from django.contrib import admin

from .models import AssertionResult, AssertionRule, GateOverride, ProfileRun


@admin.register(ProfileRun)
class ProfileRunAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "version", "status", "processed", "total", "created_at", "finished_at")
    list_filter = ("status",)
    exclude = ("profile",)


@admin.register(AssertionRule)
class AssertionRuleAdmin(admin.ModelAdmin):
    list_display = ("project", "check_name", "severity", "position")


@admin.register(AssertionResult)
class AssertionResultAdmin(admin.ModelAdmin):
    list_display = ("run", "check_name", "severity", "passed", "bound")


@admin.register(GateOverride)
class GateOverrideAdmin(admin.ModelAdmin):
    list_display = ("version", "user", "created_at", "reason")
