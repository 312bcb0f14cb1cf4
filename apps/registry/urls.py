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
    path(P + "requests/<int:pk>/approve/", views.RequestActionView.as_view(action="approve"), name="registry-approve"),
    path(P + "requests/<int:pk>/reject/", views.RequestActionView.as_view(action="reject"), name="registry-reject"),
    path(
        P + "requests/<int:pk>/withdraw/", views.RequestActionView.as_view(action="withdraw"), name="registry-withdraw"
    ),
    path(P + "settings/", views.SettingsView.as_view(), name="registry-settings"),
    path(M, views.ModelView.as_view(), name="registry-model"),
    path(M + "rollback/", views.RollbackView.as_view(), name="registry-rollback"),
    path(V, views.VersionView.as_view(), name="registry-version"),
    path(V + "stage/", views.VersionActionView.as_view(action="stage"), name="registry-stage"),
    path(V + "alias/", views.VersionActionView.as_view(action="alias"), name="registry-alias"),
    path(V + "promote/", views.VersionActionView.as_view(action="promote"), name="registry-promote"),
    path(V + "bundle.zip", views.BundleView.as_view(), name="registry-bundle"),
    path("notifications/", views.NotificationsView.as_view(), name="notifications"),
]
