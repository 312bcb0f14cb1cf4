from django.urls import path

from . import views

P = "p/<slug:slug>/registry/"
M = P + "models/<int:pk>/"
V = M + "versions/<int:number>/"
urlpatterns = [
    path(P, views.IndexView.as_view(), name="registry-index"),
    path(P + "register/", views.RegisterView.as_view(), name="registry-register"),
    path(P + "inbox/", views.InboxView.as_view(), name="registry-inbox"),
    path(P + "requests/<int:pk>/", views.RequestView.as_view(), name="registry-request"),
    path(P + "requests/<int:pk>/approve/", views.ApproveView.as_view(), name="registry-approve"),
    path(P + "requests/<int:pk>/reject/", views.RejectView.as_view(), name="registry-reject"),
    path(P + "requests/<int:pk>/withdraw/", views.WithdrawView.as_view(), name="registry-withdraw"),
    path(P + "settings/", views.SettingsView.as_view(), name="registry-settings"),
    path(P + "settings/webhooks/", views.WebhookCreateView.as_view(), name="registry-webhook-create"),
    path(P + "settings/webhooks/<int:hook>/delete/", views.WebhookDeleteView.as_view(), name="registry-webhook-delete"),
    path(M, views.ModelView.as_view(), name="registry-model"),
    path(M + "rollback/", views.RollbackView.as_view(), name="registry-rollback"),
    path(V, views.VersionView.as_view(), name="registry-version"),
    path(V + "stage/", views.StageView.as_view(), name="registry-stage"),
    path(V + "alias/", views.AliasView.as_view(), name="registry-alias"),
    path(V + "promote/", views.PromoteView.as_view(), name="registry-promote"),
    path(V + "bundle.zip", views.BundleView.as_view(), name="registry-bundle"),
    path("notifications/", views.NotificationsView.as_view(), name="notifications"),
    path("notifications/<int:pk>/open/", views.NotificationOpenView.as_view(), name="notification-open"),
]
