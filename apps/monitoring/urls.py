from django.urls import path

from . import metrics, views

urlpatterns = [
    path("metrics", metrics.metrics_view, name="metrics"),
    path("portfolio/", views.PortfolioView.as_view(), name="portfolio"),
    path("p/<slug:slug>/monitoring/", views.DashboardView.as_view(), name="monitoring-dashboard"),
    path("p/<slug:slug>/monitoring/rules/", views.RulesView.as_view(), name="monitoring-rules"),
    path("p/<slug:slug>/monitoring/rules/defaults/", views.RuleDefaultsView.as_view(), name="monitoring-rule-defaults"),
    path(
        "p/<slug:slug>/monitoring/rules/<int:rule>/toggle/",
        views.RuleToggleView.as_view(),
        name="monitoring-rule-toggle",
    ),
    path(
        "p/<slug:slug>/monitoring/rules/<int:rule>/delete/",
        views.RuleDeleteView.as_view(),
        name="monitoring-rule-delete",
    ),
    path("p/<slug:slug>/monitoring/alerts/<int:alert_id>/", views.AlertView.as_view(), name="monitoring-alert"),
    path(
        "p/<slug:slug>/monitoring/alerts/<int:alert_id>/acknowledge/",
        views.AlertAcknowledgeView.as_view(),
        name="monitoring-alert-acknowledge",
    ),
    path(
        "p/<slug:slug>/monitoring/alerts/<int:alert_id>/resolve/",
        views.AlertResolveView.as_view(),
        name="monitoring-alert-resolve",
    ),
]
