from django.urls import path

from . import api

P = "projects/<slug:project_slug>/serving/"
urlpatterns = [
    path(P, api.State.as_view(), name="api-serving-state"),
    path(P + "models/<str:model>/predict/", api.Predict.as_view(), name="api-serving-predict"),
    path(P + "models/<str:model>/route/", api.Route.as_view(), name="api-serving-route"),
    path(P + "models/<str:model>/comparison/", api.Comparison.as_view(), name="api-serving-comparison"),
    path(P + "predictions/", api.Predictions.as_view(), name="api-serving-predictions"),
    path(P + "tokens/", api.Tokens.as_view(), name="api-serving-tokens"),
    path(P + "tokens/<int:pk>/revoke/", api.TokenRevoke.as_view(), name="api-serving-token-revoke"),
]
