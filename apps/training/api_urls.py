from django.urls import path

from . import api

P = "projects/<slug:project_slug>/training/"
urlpatterns = [
    path(P + "runs/", api.RunListCreate.as_view(), name="api-training-runs"),
    path(P + "runs/<int:pk>/", api.RunDetail.as_view(), name="api-training-run"),
    path(P + "estimate/", api.RunEstimate.as_view(), name="api-training-estimate"),
    path(P + "runs/<int:pk>/live/", api.RunLive.as_view(), name="api-training-run-live"),
    path(P + "runs/<int:pk>/cancel/", api.RunCancel.as_view(), name="api-training-run-cancel"),
    path(P + "runs/<int:pk>/rerun/", api.RunRerun.as_view(), name="api-training-run-rerun"),
    path(P + "runs/<int:pk>/artifacts/<str:kind>/", api.RunArtifact.as_view(), name="api-training-run-artifact"),
    path(P + "runs/<int:pk>/misclassified/", api.Misclassified.as_view(), name="api-training-run-misclassified"),
    path(P + "sweeps/", api.SweepListCreate.as_view(), name="api-training-sweeps"),
    path(P + "sweeps/<int:pk>/", api.SweepDetail.as_view(), name="api-training-sweep"),
    path(P + "sweeps/<int:pk>/cancel/", api.SweepCancel.as_view(), name="api-training-sweep-cancel"),
]
