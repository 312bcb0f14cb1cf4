from django.urls import path

from . import api

P = "projects/<slug:project_slug>/profiling/"
urlpatterns = [
    path(P + "runs/", api.RunListStart.as_view(), name="api-profiling-runs"),
    path(P + "runs/<int:run_id>/", api.RunDetail.as_view(), name="api-profiling-run"),
    path(P + "runs/<int:run_id>/profile/", api.RunProfile.as_view(), name="api-profiling-profile"),
    path(P + "runs/<int:run_id>/cancel/", api.RunCancel.as_view(), name="api-profiling-cancel"),
    path(P + "runs/<int:run_id>/suggest/", api.RunSuggest.as_view(), name="api-profiling-suggest"),
    path(P + "compare/", api.Compare.as_view(), name="api-profiling-compare"),
    path(P + "assertions/", api.AssertionDocument.as_view(), name="api-profiling-assertions"),
    path(P + "versions/<int:number>/gate/", api.Gate.as_view(), name="api-profiling-gate"),
    path(P + "versions/<int:number>/gate/override/", api.GateOverride.as_view(), name="api-profiling-override"),
]
