"""The registry over the API. Members read; data scientists register, move stages, set aliases,
request and withdraw promotions; managers approve, reject, roll back and edit settings/webhooks."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.projects.permissions import PROJECT_MEMBER, ProjectAPIMixin, project_permissions
from apps.training.models import TrainingRun

from . import bundle, gate, selectors, services
from .models import ModelVersion, Notification, PromotionRequest, RegisteredModel, RegistrySettings, Webhook

DS_WRITES = project_permissions(Role.DATA_SCIENTIST, safe_for_members=True)
DS_ONLY = project_permissions(Role.DATA_SCIENTIST)
STAGE_WRITERS = project_permissions(Role.DATA_SCIENTIST, Role.MANAGER)
MANAGER_ONLY = project_permissions(Role.MANAGER)
MANAGER_WRITES = project_permissions(Role.MANAGER, safe_for_members=True)


class VersionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    dataset_version = serializers.IntegerField(source="dataset_version.number")
    aliases = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "number",
            "stage",
            "run",
            "dataset_version",
            "description",
            "classes",
            "input_spec",
            "metrics",
            "artifacts",
            "aliases",
            "created_by",
            "created_at",
            "stage_changed_at",
        ]


class ModelSerializer(serializers.ModelSerializer):
    versions = VersionSerializer(many=True, read_only=True)
    production = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "description", "created_at", "production", "versions"]

    def get_production(self, obj) -> int | None:
        v = selectors.production_of(obj)
        return v.number if v else None


class RequestSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.registered_model.name", read_only=True)
    model_id = serializers.IntegerField(source="version.registered_model_id", read_only=True)
    version = serializers.IntegerField(source="version.number")
    requested_by = serializers.CharField(source="requested_by.username", default=None)
    decided_by = serializers.CharField(source="decided_by.username", default=None)
    approvals = serializers.SerializerMethodField()

    class Meta:
        model = PromotionRequest
        fields = [
            "id",
            "model",
            "model_id",
            "version",
            "status",
            "note",
            "requested_by",
            "created_at",
            "gate_passed",
            "gate",
            "required_approvals",
            "approvals",
            "decided_by",
            "decided_at",
            "decision_comment",
        ]

    def get_approvals(self, obj) -> list:
        return [
            {"user": a.user.username, "comment": a.comment, "gate_exception": a.gate_exception, "at": a.created_at}
            for a in obj.approvals.all()
        ]


class RegisterIn(serializers.Serializer):
    run = serializers.IntegerField(help_text="the id of a succeeded TrainingRun")
    registered_model_name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ModelListRegister(ProjectAPIMixin, generics.ListAPIView):
    """Registered models with their versions (members); register a run as a new version (data scientists)."""

    serializer_class = ModelSerializer
    permission_classes = DS_WRITES

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RegisteredModel.objects.none()
        return RegisteredModel.objects.filter(project=self.project).prefetch_related("versions__aliases")

    @extend_schema(request=RegisterIn, responses={201: VersionSerializer})
    def post(self, request, project_slug):
        s = RegisterIn(data=request.data)
        s.is_valid(raise_exception=True)
        run = TrainingRun.objects.filter(project=self.project, pk=s.validated_data["run"]).first()
        if run is None:
            raise serializers.ValidationError({"run": [f"No training run {s.validated_data['run']} in this project."]})
        v = services.model_version_register(
            run=run,
            user=request.user,
            description=s.validated_data["description"],
            registered_model_name=s.validated_data["registered_model_name"],
        )
        return Response(VersionSerializer(v).data, status=status.HTTP_201_CREATED)


class ModelDetail(ProjectAPIMixin, generics.RetrieveAPIView):
    serializer_class = ModelSerializer
    permission_classes = PROJECT_MEMBER

    def get_object(self):
        return selectors.model_get(self.project, self.kwargs["pk"])


class VersionDetail(ProjectAPIMixin, APIView):
    """One version (``ref``: a number, ``production``, ``staging`` or an alias) with its lineage."""

    permission_classes = PROJECT_MEMBER

    @extend_schema(responses=VersionSerializer)
    def get(self, request, project_slug, pk, ref):
        rm = selectors.model_get(self.project, pk)
        v = selectors.version_resolve(rm, ref)
        lin = selectors.lineage(v)
        data = VersionSerializer(v).data
        data["lineage"] = {
            "run": {"id": v.run_id, "name": v.run.name, "config": v.run.config, "code_version": v.run.code_version},
            "dataset_version": {
                "id": v.dataset_version_id,
                "number": v.dataset_version.number,
                "content_hash": v.dataset_version.content_hash,
                "counts": v.dataset_version.counts,
            },
            "profile": (
                {
                    "id": lin["profile"].pk,
                    "summary": lin["profile"].summary,
                    "assertions": [
                        {
                            "check": r.check_name,
                            "title": r.title,
                            "severity": r.severity,
                            "passed": r.passed,
                            "message": r.message,
                        }
                        for r in lin["assertions"]
                    ],
                }
                if lin["profile"]
                else None
            ),
            "labelers": [
                {"user": r["updated_by__username"], "source": r["source"], "labels": r["n"]} for r in lin["labelers"]
            ],
            "annotators": [
                {"user": r["user__username"], "status": r["status"], "annotations": r["n"]} for r in lin["annotators"]
            ],
        }
        return Response(data)


class StageIn(serializers.Serializer):
    stage = serializers.ChoiceField(choices=["none", "staging", "archived"])
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class VersionStage(ProjectAPIMixin, APIView):
    permission_classes = STAGE_WRITERS

    @extend_schema(request=StageIn, responses=VersionSerializer)
    def post(self, request, project_slug, pk, number):
        s = StageIn(data=request.data)
        s.is_valid(raise_exception=True)
        v = selectors.version_get(self.project, pk, number)
        v = services.model_version_stage_set(version=v, user=request.user, **s.validated_data)
        return Response(VersionSerializer(v).data)


class AliasIn(serializers.Serializer):
    name = serializers.CharField(max_length=40)
    version = serializers.IntegerField(help_text="the version number")


class AliasSet(ProjectAPIMixin, APIView):
    permission_classes = STAGE_WRITERS

    @extend_schema(request=AliasIn, responses=AliasIn)
    def post(self, request, project_slug, pk):
        s = AliasIn(data=request.data)
        s.is_valid(raise_exception=True)
        rm = selectors.model_get(self.project, pk)
        v = selectors.version_get(self.project, pk, s.validated_data["version"])
        alias = services.model_alias_set(
            registered_model=rm, name=s.validated_data["name"], version=v, user=request.user
        )
        return Response({"name": alias.name, "version": v.number})


class PromotionIn(serializers.Serializer):
    note = serializers.CharField(allow_blank=True, help_text="why this version should go to production")


class PromotionCreate(ProjectAPIMixin, APIView):
    """Request promotion of a version to production: the gate runs and its results come back."""

    permission_classes = DS_ONLY

    @extend_schema(request=PromotionIn, responses={201: RequestSerializer})
    def post(self, request, project_slug, pk, number):
        s = PromotionIn(data=request.data)
        s.is_valid(raise_exception=True)
        v = selectors.version_get(self.project, pk, number)
        req = services.promotion_request_create(version=v, user=request.user, note=s.validated_data["note"])
        return Response(RequestSerializer(req).data, status=status.HTTP_201_CREATED)


class RequestList(ProjectAPIMixin, generics.ListAPIView):
    """Promotion requests (``?status=open`` for the approval inbox)."""

    serializer_class = RequestSerializer
    permission_classes = PROJECT_MEMBER

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PromotionRequest.objects.none()
        return selectors.requests_of(self.project, self.request.query_params.get("status") or None)


class RequestDetail(ProjectAPIMixin, generics.RetrieveAPIView):
    serializer_class = RequestSerializer
    permission_classes = PROJECT_MEMBER

    def get_object(self):
        return selectors.request_get(self.project, self.kwargs["pk"])


class CommentIn(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ApproveIn(CommentIn):
    exception_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Required when the request's gate failed: why it may go to production anyway.",
    )


def _decision(name, fn, perms, arg="comment", body=CommentIn):
    class View(ProjectAPIMixin, APIView):
        permission_classes = perms

        @extend_schema(request=body, responses=RequestSerializer, summary=name)
        def post(self, request, project_slug, pk):
            s = body(data=request.data)
            s.is_valid(raise_exception=True)
            extra = {k: v for k, v in s.validated_data.items() if k != "comment"}
            req = fn(
                request=selectors.request_get(self.project, pk),
                user=request.user,
                **{arg: s.validated_data["comment"]},
                **extra,
            )
            return Response(RequestSerializer(req).data)

    View.__name__ = name
    return View


RequestApprove = _decision("RequestApprove", services.promotion_request_approve, MANAGER_ONLY, body=ApproveIn)
RequestReject = _decision("RequestReject", services.promotion_request_reject, MANAGER_ONLY)
RequestWithdraw = _decision("RequestWithdraw", services.promotion_request_withdraw, DS_ONLY, arg="reason")


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True)


class Rollback(ProjectAPIMixin, APIView):
    """Roll the model back to the version that was in production before the current one."""

    permission_classes = MANAGER_ONLY

    @extend_schema(request=ReasonIn, responses=VersionSerializer)
    def post(self, request, project_slug, pk):
        s = ReasonIn(data=request.data)
        s.is_valid(raise_exception=True)
        v = services.model_version_rollback(
            registered_model=selectors.model_get(self.project, pk), user=request.user, reason=s.validated_data["reason"]
        )
        return Response(VersionSerializer(v).data)


class Bundle(ProjectAPIMixin, APIView):
    """The version as a zip: model.keras, model card, serve.py, requirements.txt, Dockerfile."""

    permission_classes = PROJECT_MEMBER

    @extend_schema(responses={(200, "application/zip"): bytes})
    def get(self, request, project_slug, pk, number):
        return bundle.bundle_response(selectors.version_get(self.project, pk, number))


class SettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = RegistrySettings
        fields = ["required_approvals", "champion_margin", "champion_metric", "require_export_parity", "updated_at"]
        read_only_fields = ["updated_at"]


class SettingsView(ProjectAPIMixin, APIView):
    permission_classes = MANAGER_WRITES

    @extend_schema(responses=SettingsSerializer)
    def get(self, request, project_slug):
        return Response(SettingsSerializer(gate.settings_for(self.project)).data)

    @extend_schema(request=SettingsSerializer, responses=SettingsSerializer)
    def patch(self, request, project_slug):
        keys = ("required_approvals", "champion_margin", "champion_metric", "require_export_parity")
        unknown = sorted(set(request.data) - set(keys))
        if unknown:
            raise serializers.ValidationError({unknown[0]: [f"Unknown setting; use {', '.join(keys)}."]})
        rules = services.registry_settings_update(
            project=self.project, user=request.user, **{k: request.data[k] for k in keys if k in request.data}
        )
        return Response(SettingsSerializer(rules).data)


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "secret", "created_at"]


class WebhookIn(serializers.Serializer):
    url = serializers.CharField(max_length=500)
    events = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    secret = serializers.CharField(required=False, allow_blank=True, default="")


class WebhookListCreate(ProjectAPIMixin, generics.ListAPIView):
    """The project's webhooks with their secrets (managers only: the secret signs every delivery)."""

    serializer_class = WebhookSerializer
    permission_classes = MANAGER_ONLY

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Webhook.objects.none()
        return Webhook.objects.filter(project=self.project)

    @extend_schema(request=WebhookIn, responses={201: WebhookSerializer})
    def post(self, request, project_slug):
        s = WebhookIn(data=request.data)
        s.is_valid(raise_exception=True)
        hook = services.webhook_create(project=self.project, user=request.user, **s.validated_data)
        return Response(WebhookSerializer(hook).data, status=status.HTTP_201_CREATED)


class NotificationSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug")

    class Meta:
        model = Notification
        fields = ["id", "project", "event", "message", "url", "read_at", "created_at"]


class NotificationReadIn(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class NotificationList(generics.ListAPIView):
    """The caller's own notifications, newest first; POST marks them read (``ids``: some; none: all)."""

    serializer_class = NotificationSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        qs = selectors.notifications_of(self.request.user)
        return qs.filter(read_at__isnull=True) if self.request.query_params.get("unread") else qs

    @extend_schema(request=NotificationReadIn)
    def post(self, request):
        s = NotificationReadIn(data=request.data)
        s.is_valid(raise_exception=True)
        n = services.notifications_mark_read(user=request.user, ids=s.validated_data.get("ids"))
        return Response({"marked_read": n, "unread": selectors.unread_count(request.user)})
