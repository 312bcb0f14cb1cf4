from django.urls import path

from . import api

urlpatterns = [
    path("projects/", api.ProjectListCreate.as_view(), name="api-projects"),
    path("projects/<slug:project_slug>/", api.ProjectDetail.as_view(), name="api-project"),
    path("projects/<slug:project_slug>/scope/submit/", api.ScopeSubmit.as_view(), name="api-scope-submit"),
    path("projects/<slug:project_slug>/scope/approve/", api.ScopeApprove.as_view(), name="api-scope-approve"),
    path("projects/<slug:project_slug>/scope/return/", api.ScopeReturn.as_view(), name="api-scope-return"),
    path("projects/<slug:project_slug>/scope/override/", api.ScopeGateOverride.as_view(), name="api-scope-override"),
    path("projects/<slug:project_slug>/scope/revisions/", api.RevisionList.as_view(), name="api-scope-revisions"),
    path("projects/<slug:project_slug>/scope/diff/", api.RevisionDiff.as_view(), name="api-scope-diff"),
    path("projects/<slug:project_slug>/scope/export.<str:fmt>", api.ScopeExport.as_view(), name="api-scope-export"),
    path("projects/<slug:project_slug>/members/", api.MemberList.as_view(), name="api-members"),
    path("projects/<slug:project_slug>/plan/", api.PlanDetail.as_view(), name="api-plan"),
    path("projects/<slug:project_slug>/comments/", api.CommentList.as_view(), name="api-comments"),
    path("projects/<slug:project_slug>/comments/<int:pk>/", api.CommentDetail.as_view(), name="api-comment"),
    path("projects/<slug:project_slug>/audit/", api.AuditList.as_view(), name="api-audit"),
]
