from django.urls import path

from . import api

P = "projects/<slug:project_slug>/registry/"
urlpatterns = [
    path(P + "models/", api.ModelListRegister.as_view(), name="api-registry-models"),
    path(P + "models/<int:pk>/", api.ModelDetail.as_view(), name="api-registry-model"),
    path(P + "models/<int:pk>/versions/<int:number>/stage/", api.VersionStage.as_view(), name="api-registry-stage"),
    path(
        P + "models/<int:pk>/versions/<int:number>/promotion/",
        api.PromotionCreate.as_view(),
        name="api-registry-promote",
    ),
    path(P + "models/<int:pk>/versions/<int:number>/bundle/", api.Bundle.as_view(), name="api-registry-bundle"),
    path(P + "models/<int:pk>/versions/<str:ref>/", api.VersionDetail.as_view(), name="api-registry-version"),
    path(P + "models/<int:pk>/aliases/", api.AliasSet.as_view(), name="api-registry-aliases"),
    path(P + "models/<int:pk>/rollback/", api.Rollback.as_view(), name="api-registry-rollback"),
    path(P + "requests/", api.RequestList.as_view(), name="api-registry-requests"),
    path(P + "requests/<int:pk>/", api.RequestDetail.as_view(), name="api-registry-request"),
    path(P + "requests/<int:pk>/approve/", api.RequestApprove.as_view(), name="api-registry-approve"),
    path(P + "requests/<int:pk>/reject/", api.RequestReject.as_view(), name="api-registry-reject"),
    path(P + "requests/<int:pk>/withdraw/", api.RequestWithdraw.as_view(), name="api-registry-withdraw"),
    path(P + "settings/", api.SettingsView.as_view(), name="api-registry-settings"),
    path(P + "webhooks/", api.WebhookListCreate.as_view(), name="api-registry-webhooks"),
    path("notifications/", api.NotificationList.as_view(), name="api-notifications"),
]
