from django.urls import path

from . import api

P = "projects/<slug:project_slug>/monitoring/"
urlpatterns = [
    path(P + "summary/", api.Summary.as_view(), name="api-monitoring-summary"),
    path(P + "rules/", api.RuleList.as_view(), name="api-monitoring-rules"),
    path(P + "rules/<int:rule_id>/", api.RuleDetail.as_view(), name="api-monitoring-rule"),
    path(P + "rules/evaluate/", api.RulesEvaluate.as_view(), name="api-monitoring-evaluate"),
    path(P + "live-sample/", api.LiveSampleCollect.as_view(), name="api-monitoring-live-sample"),
    path(P + "alerts/", api.AlertList.as_view(), name="api-monitoring-alerts"),
    path(P + "alerts/<int:alert_id>/", api.AlertDetail.as_view(), name="api-monitoring-alert"),
    path(
        P + "alerts/<int:alert_id>/acknowledge/",
        api.AlertAction.as_view(action="acknowledge"),
        name="api-monitoring-acknowledge",
    ),
    path(
        P + "alerts/<int:alert_id>/resolve/", api.AlertAction.as_view(action="resolve"), name="api-monitoring-resolve"
    ),
]
