from django.contrib import admin

from .models import ApiToken, ProjectMember


@admin.register(ProjectMember)
class ProjectMemberAdmin(admin.ModelAdmin):
    list_display = ("user", "project", "role", "added_at")
    list_filter = ("role", "project")
    search_fields = ("user__username", "project__name")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "key_prefix", "project", "scopes", "created_at", "revoked_at")
    readonly_fields = ("key_hash", "key_prefix")
