from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/new/", views.ProjectCreateView.as_view(), name="project-create"),
    path("p/<slug:slug>/", views.ProjectDetailView.as_view(), name="project-detail"),
    path("p/<slug:slug>/scope/", views.ScopeView.as_view(), name="project-scope"),
    path("p/<slug:slug>/scope/submit/", views.ScopeSubmitView.as_view(), name="project-scope-submit"),
    path("p/<slug:slug>/scope/approve/", views.ScopeApproveView.as_view(), name="project-scope-approve"),
    path("p/<slug:slug>/scope/return/", views.ScopeReturnView.as_view(), name="project-scope-return"),
    path("p/<slug:slug>/scope/override/", views.ScopeOverrideView.as_view(), name="project-scope-override"),
    path("p/<slug:slug>/scope/revisions/", views.RevisionsView.as_view(), name="project-revisions"),
    path("p/<slug:slug>/scope/export.<str:fmt>", views.ScopeExportView.as_view(), name="project-export"),
    path("p/<slug:slug>/members/", views.MembersView.as_view(), name="project-members"),
    path("p/<slug:slug>/members/<int:user_id>/remove/", views.MemberRemoveView.as_view(), name="project-member-remove"),
    path("p/<slug:slug>/plan/", views.PlanView.as_view(), name="project-plan"),
    path("p/<slug:slug>/plan/accept/", views.ForecastAcceptView.as_view(), name="project-plan-accept"),
    path("p/<slug:slug>/comments/<str:kind>/<int:target_id>/", views.CommentsView.as_view(), name="project-comments"),
    path("p/<slug:slug>/comments/<int:pk>/edit/", views.CommentEditView.as_view(), name="project-comment-edit"),
    path("p/<slug:slug>/audit/", views.AuditLogView.as_view(), name="project-audit"),
]
