from django.urls import path

from . import views

urlpatterns = [
    path("p/<slug:slug>/profile/", views.IndexView.as_view(), name="profiling-index"),
    path("p/<slug:slug>/profile/start/", views.StartView.as_view(), name="profiling-start"),
    path("p/<slug:slug>/profile/runs/<int:run_id>/", views.RunView.as_view(), name="profiling-run"),
    path("p/<slug:slug>/profile/runs/<int:run_id>/cancel/", views.CancelView.as_view(), name="profiling-cancel"),
    path("p/<slug:slug>/profile/compare/", views.CompareView.as_view(), name="profiling-compare"),
    path("p/<slug:slug>/profile/assertions/", views.AssertionsView.as_view(), name="profiling-assertions"),
    path("p/<slug:slug>/profile/runs/<int:run_id>/override/", views.OverrideView.as_view(), name="profiling-override"),
]
