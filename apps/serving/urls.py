from django.urls import path

from . import views

P = "p/<slug:slug>/serving/"
urlpatterns = [
    path(P, views.IndexView.as_view(), name="serving-index"),
    path(P + "models/<str:model>/route/", views.RouteView.as_view(), name="serving-route"),
    path(P + "tokens/", views.TokensView.as_view(), name="serving-tokens"),
    path(P + "tokens/<int:pk>/revoke/", views.TokenRevokeView.as_view(), name="serving-token-revoke"),
]
