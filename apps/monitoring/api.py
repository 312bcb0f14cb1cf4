"""Monitoring over the API: numbers, drift, live accuracy, rules, alerts (acknowledge/resolve)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.projects.permissions import PROJECT_MEMBER, ProjectAPIMixin, project_permissions

from . import selectors, services
from .models import IncidentEvent

RULES_WRITE = project_permissions(*services.RULE_EDITORS, safe_for_members=True)
MANAGER_WRITE = project_permissions(Role.MANAGER)


class RuleSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField()
    kind = serializers.CharField()
    threshold = serializers.FloatField(required=False, allow_null=True)
    params = serializers.JSONField(required=False)
    enabled = serializers.BooleanField(required=False)
    retrain = serializers.BooleanField(required=False)
    last_value = serializers.FloatField(read_only=True)
    last_evaluated_at = serializers.DateTimeField(read_only=True)


class EventSerializer(serializers.Serializer):
    created_at = serializers.DateTimeField()
    kind = serializers.CharField()
    actor = serializers.CharField(source="actor.username", default=None)
    message = serializers.CharField()
    data = serializers.JSONField()


class AlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.CharField()
    rule = serializers.IntegerField(source="rule_id")
    value = serializers.FloatField()
    threshold = serializers.FloatField()
    opened_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField()
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", default=None)
    resolved_at = serializers.DateTimeField()
    resolved_by = serializers.CharField(source="resolved_by.username", default=None)
    resolution_note = serializers.CharField()
    recovered_at = serializers.DateTimeField()


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


def _drift(r):
    if r is None:
        return None
    return {
        "model_version": r.model_version_id,
        "day": r.day,
        "n": r.n,
        "stats": r.stats,
        "max_psi": r.max_psi,
        "max_ks": r.max_ks,
        "embedding_mmd": r.embedding_mmd,
        "embedding_n": r.embedding_n,
    }


class Summary(ProjectAPIMixin, APIView):
    """The dashboard's numbers over a time range (1h, 6h, 24h, 7d, 30d): predictions per version,
    serving latency, live accuracy, drift per day, endpoints, the latest infrastructure sample."""

    permission_classes = PROJECT_MEMBER

    @extend_schema(
        parameters=[OpenApiParameter("range", str), OpenApiParameter("version", int)], responses=OpenApiTypes.OBJECT
    )
    def get(self, request, project_slug):
        name, start, end, bucket = selectors.time_range(request.query_params.get("range"))
        version = request.query_params.get("version")
        if version and not str(version).isdigit():
            return Response({"version": ["A model version id (a whole number)."]}, status=400)
        per, totals = selectors.prediction_series(self.project, start, end, bucket, int(version) if version else None)
        infra = selectors.latest_infra()
        return Response(
            {
                "range": name,
                "start": start,
                "end": end,
                "predictions": [
                    {
                        "model_version": vid,
                        "count": t["count"],
                        "low_confidence": t["low"],
                        "classes": t["classes"],
                        "confidence_hist": t["confidence"],
                    }
                    for vid, t in totals.items()
                ],
                "serving": selectors.serving_latency(self.project, start, end),
                "live": selectors.live_scores(self.project, start=start, end=end),
                "targets": [
                    {"metric": t.metric, "comparator": t.comparator, "target": t.target}
                    for t in (self.project.approved_targets or [])
                ],
                "drift": [_drift(r) for r in selectors.drift_reports(self.project, start)],
                "endpoints": selectors.endpoint_table(start, end),
                "infrastructure": None
                if infra is None
                else {
                    "taken_at": infra.taken_at,
                    "queues": infra.queues,
                    "live_workers": infra.live_workers,
                    "workers": infra.workers,
                    "jobs": infra.jobs,
                    "storage": infra.storage,
                    "health": infra.health,
                },
                "open_alerts": selectors.firing_count(self.project),
            }
        )


class RuleList(ProjectAPIMixin, APIView):
    """Alert rules (any member reads; PM or data scientist adds)."""

    permission_classes = RULES_WRITE

    @extend_schema(responses=RuleSerializer(many=True))
    def get(self, request, project_slug):
        return Response(RuleSerializer(selectors.rules_of(self.project), many=True).data)

    @extend_schema(request=RuleSerializer, responses=RuleSerializer)
    def post(self, request, project_slug):
        rule = services.alert_rule_create(project=self.project, user=request.user, data=dict(request.data))
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetail(ProjectAPIMixin, APIView):
    permission_classes = RULES_WRITE

    def get_rule(self, rule_id):
        return get_object_or_404(selectors.rules_of(self.project), pk=rule_id)

    @extend_schema(responses=RuleSerializer)
    def get(self, request, project_slug, rule_id):
        return Response(RuleSerializer(self.get_rule(rule_id)).data)

    @extend_schema(request=RuleSerializer, responses=RuleSerializer)
    def patch(self, request, project_slug, rule_id):
        rule = services.alert_rule_update(rule=self.get_rule(rule_id), user=request.user, data=dict(request.data))
        return Response(RuleSerializer(rule).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_slug, rule_id):
        services.alert_rule_delete(rule=self.get_rule(rule_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RulesEvaluate(ProjectAPIMixin, APIView):
    """Evaluate the rules now (beat does it every minute)."""

    permission_classes = project_permissions(*services.RULE_EDITORS)

    @extend_schema(request=None, responses=AlertSerializer(many=True))
    def post(self, request, project_slug):
        return Response(AlertSerializer(services.rules_evaluate(project=self.project), many=True).data)


class LiveSampleCollect(ProjectAPIMixin, APIView):
    """Send kept production inputs to the labeling queue now (low-confidence first, plus a random share)."""

    permission_classes = project_permissions(*services.RULE_EDITORS)

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, project_slug):
        made = services.live_sample_collect(project=self.project)
        return Response({"queued": len(made)})


class AlertList(ProjectAPIMixin, APIView):
    permission_classes = PROJECT_MEMBER

    @extend_schema(responses=AlertSerializer(many=True), parameters=[OpenApiParameter("status", str)])
    def get(self, request, project_slug):
        return Response(
            AlertSerializer(selectors.alerts_of(self.project, request.query_params.get("status"))[:200], many=True).data
        )


class AlertDetail(ProjectAPIMixin, APIView):
    """One alert with its incident timeline."""

    permission_classes = PROJECT_MEMBER

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, project_slug, alert_id):
        alert = get_object_or_404(selectors.alerts_of(self.project), pk=alert_id)
        events = IncidentEvent.objects.filter(alert=alert).select_related("actor")
        return Response({**AlertSerializer(alert).data, "events": EventSerializer(events, many=True).data})


class AlertAction(ProjectAPIMixin, APIView):
    """Acknowledge (note optional) or resolve (note required) an alert: managers only."""

    permission_classes = MANAGER_WRITE
    action = None

    @extend_schema(request=NoteSerializer, responses=AlertSerializer)
    def post(self, request, project_slug, alert_id):
        alert = get_object_or_404(selectors.alerts_of(self.project), pk=alert_id)
        ser = NoteSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        fn = services.alert_acknowledge if self.action == "acknowledge" else services.alert_resolve
        return Response(AlertSerializer(fn(alert=alert, user=request.user, note=ser.validated_data["note"])).data)
