from django.urls import path

from . import views

P = "p/<slug:slug>/training/"
urlpatterns = [
    path(P, views.RunsView.as_view(), name="training-runs"),
    path(P + "new/", views.RunCreateView.as_view(), name="training-run-create"),
    path(P + "runs/<int:pk>/", views.RunDetailView.as_view(), name="training-run"),
    path(P + "runs/<int:pk>/cancel/", views.RunCancelView.as_view(), name="training-run-cancel"),
    path(P + "runs/<int:pk>/rerun/", views.RunRerunView.as_view(), name="training-run-rerun"),
    path(P + "runs/<int:pk>/evaluation/", views.EvaluationView.as_view(), name="training-run-evaluation"),
    path(P + "compare/", views.CompareView.as_view(), name="training-compare"),
    path(P + "sweeps/new/", views.SweepCreateView.as_view(), name="training-sweep-create"),
    path(P + "sweeps/<int:pk>/", views.SweepDetailView.as_view(), name="training-sweep"),
    path(P + "sweeps/<int:pk>/cancel/", views.SweepCancelView.as_view(), name="training-sweep-cancel"),
]
