from django.urls import path

from . import metrics, views

urlpatterns = [
    path("metrics", metrics.metrics_view, name="metrics"),
    path("p/<slug:slug>/monitoring/", views.DashboardView.as_view(), name="monitoring-dashboard"),
    path("p/<slug:slug>/monitoring/rules/", views.RulesView.as_view(), name="monitoring-rules"),
    path("p/<slug:slug>/monitoring/alerts/<int:alert_id>/", views.AlertView.as_view(), name="monitoring-alert"),
]
