from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.services import member_add_by_username, member_remove, user_by_name_or_email
from apps.core.models import AuditEvent
from apps.projects.permissions import PROJECT_MEMBER, ProjectAPIMixin, project_permissions, roles_of

from . import comments, services
from . import plan as plans
from .models import Comment, Project, ScopeRevision
from .selectors import members_of, projects_for_user


class TargetSerializer(serializers.Serializer):
    metric = serializers.CharField()
    comparator = serializers.CharField()
    target = serializers.FloatField()
    unit = serializers.CharField(required=False, allow_blank=True)


class ProjectSerializer(serializers.ModelSerializer):
    """Field checks live in services.scope_clean; this only shapes the JSON."""

    measurement = serializers.JSONField(required=False, help_text="[{metric, comparator, target, unit}]")
    delivery = serializers.JSONField(required=False, help_text="[deliverable, …]")
    checklist = serializers.JSONField(required=False, help_text="{key: {answer: yes|no|unsure, note}}")
    name = serializers.CharField(allow_blank=True)
    dataset_link = serializers.CharField(required=False, allow_blank=True)
    verdict = serializers.SerializerMethodField()
    scope_gate = serializers.SerializerMethodField()
    my_roles = serializers.SerializerMethodField()
    creator_roles = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        write_only=True,
        help_text="On creation: the roles you take in the project (default: all five; pm always).",
    )

    class Meta:
        model = Project
        fields = [
            "slug",
            "name",
            "dataset",
            "dataset_link",
            "model",
            "code_language",
            "goal",
            "measurement",
            "delivery",
            "checklist",
            "scope_status",
            "verdict",
            "scope_gate",
            "my_roles",
            "creator_roles",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["slug", "scope_status", "created_at", "updated_at"]

    def get_verdict(self, obj) -> dict:
        return services.checklist_verdict(obj.checklist)

    def get_scope_gate(self, obj) -> dict:
        """Whether training and promotion may go on: {"open", "why", "override"}."""
        why = services.scope_gate(obj)
        override = (
            {"reason": obj.scope_override_reason, "by": getattr(obj.scope_override_by, "username", None)}
            if obj.scope_override_at
            else None
        )
        return {"open": not why, "why": why, "override": override}

    def get_my_roles(self, obj) -> list:

        return sorted(roles_of(self.context["request"].user, obj))


class ProjectListCreate(generics.ListCreateAPIView):
    """Your projects; creating one gives you the roles you name in ``creator_roles`` (all five by default)."""

    serializer_class = ProjectSerializer

    def get_queryset(self):
        return projects_for_user(self.request.user).order_by("name")

    def perform_create(self, serializer):
        serializer.instance = services.project_create(creator=self.request.user, **serializer.validated_data)


class ProjectDetail(ProjectAPIMixin, generics.RetrieveUpdateDestroyAPIView):
    """Read (any member), change the scope table (PM), delete (PM)."""

    serializer_class = ProjectSerializer
    permission_classes = project_permissions(Role.PM, safe_for_members=True)

    def get_object(self):
        return self.project

    def perform_update(self, serializer):
        serializer.instance = services.scope_update(
            project=self.project,
            user=self.request.user,
            data={k: v for k, v in serializer.validated_data.items() if k != "creator_roles"},
        )

    def perform_destroy(self, instance):
        services.project_delete(project=instance, user=self.request.user)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


def _transition_view(name, roles, fn, doc):
    class View(ProjectAPIMixin, APIView):
        permission_classes = project_permissions(*roles)

        @extend_schema(request=ReasonSerializer, responses=ProjectSerializer, summary=doc)
        def post(self, request, project_slug):
            data = ReasonSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            project = fn(
                project=self.project,
                user=request.user,
                **({"reason": data.validated_data["reason"]} if fn is not services.scope_submit else {}),
            )
            return Response(ProjectSerializer(project, context={"request": request}).data)

    View.__name__ = name
    return View


ScopeSubmit = _transition_view("ScopeSubmit", (Role.PM,), services.scope_submit, "Submit the scope (PM)")
ScopeApprove = _transition_view("ScopeApprove", (Role.MANAGER,), services.scope_approve, "Approve the scope (Manager)")
ScopeReturn = _transition_view(
    "ScopeReturn", (Role.MANAGER,), services.scope_reject, "Return the scope to draft (Manager)"
)
ScopeGateOverride = _transition_view(
    "ScopeGateOverride",
    (Role.MANAGER,),
    services.scope_gate_override,
    "Let training and promotion go on before the scope is approved, with a reason (Manager; audited)",
)


class RevisionSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", default=None)

    class Meta:
        model = ScopeRevision
        fields = ["number", "status", "author", "comment", "created_at", "data"]


class RevisionList(ProjectAPIMixin, generics.ListAPIView):
    serializer_class = RevisionSerializer
    queryset = ScopeRevision.objects.none()  # for the schema; get_queryset scopes to the project
    permission_classes = PROJECT_MEMBER

    def get_queryset(self):
        return self.project.scope_revisions.select_related("author")


class DiffSerializer(serializers.Serializer):
    class FieldDiff(serializers.Serializer):
        field = serializers.CharField()
        changed = serializers.BooleanField()
        old = serializers.ListField(child=serializers.CharField())
        new = serializers.ListField(child=serializers.CharField())
        diff = serializers.ListField(child=serializers.CharField())

    a = serializers.IntegerField()
    b = serializers.IntegerField()
    fields = FieldDiff(many=True)


class RevisionDiff(ProjectAPIMixin, APIView):
    permission_classes = PROJECT_MEMBER

    @extend_schema(
        parameters=[OpenApiParameter("a", int), OpenApiParameter("b", int)],
        responses=DiffSerializer,
        summary="Field-by-field diff between two scope revisions",
    )
    def get(self, request, project_slug):
        try:
            a, b = int(request.query_params["a"]), int(request.query_params["b"])
        except (KeyError, ValueError):
            return Response({"detail": "Give two revision numbers: ?a=1&b=2."}, status=status.HTTP_400_BAD_REQUEST)
        revs = {r.number: r for r in self.project.scope_revisions.filter(number__in=[a, b])}
        missing = [n for n in (a, b) if n not in revs]
        if missing:
            return Response({"detail": f"No revision {missing[0]} in this project."}, status=status.HTTP_404_NOT_FOUND)
        return Response({"a": a, "b": b, "fields": services.revision_diff(revs[a], revs[b])})


class ScopeExport(ProjectAPIMixin, APIView):
    permission_classes = PROJECT_MEMBER

    @extend_schema(summary="The scope table as Markdown (fmt=md) or CSV (fmt=csv)", responses={200: str})
    def get(self, request, project_slug, fmt):
        body = services.scope_markdown(self.project) if fmt == "md" else services.scope_csv(self.project)
        ctype = "text/markdown" if fmt == "md" else "text/csv"
        return HttpResponse(body, content_type=f"{ctype}; charset=utf-8")


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), allow_empty=True)


class MemberList(ProjectAPIMixin, APIView):
    """Members and their roles (any member); set a user's roles (PM)."""

    permission_classes = project_permissions(Role.PM, safe_for_members=True)

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request, project_slug):
        return Response(
            [{"username": u.username, "roles": sorted(m.role for m in ms)} for u, ms in members_of(self.project)]
        )

    @extend_schema(request=MemberSerializer, responses=MemberSerializer)
    def post(self, request, project_slug):

        s = MemberSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        if s.validated_data["roles"]:
            user, roles = member_add_by_username(project=self.project, actor=request.user, **s.validated_data)
        else:
            user = user_by_name_or_email(s.validated_data["username"])
            roles = member_remove(project=self.project, user=user, actor=request.user)
        return Response({"username": user.username, "roles": roles})


class AuditList(ProjectAPIMixin, generics.ListAPIView):
    permission_classes = PROJECT_MEMBER

    class Out(serializers.Serializer):
        created_at = serializers.DateTimeField()
        actor = serializers.CharField(source="actor.username", default=None)
        action = serializers.CharField()
        object_type = serializers.CharField()
        object_id = serializers.CharField()
        object_repr = serializers.CharField()
        reason = serializers.CharField()
        data = serializers.JSONField()

    serializer_class = Out
    queryset = AuditEvent.objects.none()  # for the schema; get_queryset scopes to the project

    def get_queryset(self):
        return self.project.audit_events.select_related("actor")


def plan_json(project):
    """The plan as the API shows it: milestones with actual dates and status, estimate, forecasts."""
    view = plans.plan_view(project)

    def forecast(f):
        if f is None:
            return None
        return {
            "value": f.value,
            "unit": f.unit,
            "basis": f.basis,
            "stage": f.stage,
            "finish": f.finish,
            "rates": f.rates,
        }

    return {
        "milestones": [
            {
                "stage": r["stage"],
                "planned_start": r["planned_start"],
                "planned_end": r["planned_end"],
                "owner": r["owner"],
                "actual_start": r["actual_start"],
                "actual_end": r["actual_end"],
                "status": r["status"],
                "why": r["why"],
            }
            for r in view["rows"]
        ],
        "estimate": {e["field"]: e["value"] for e in view["estimate"]}
        | {f: getattr(view["plan"], f) for f, _ in plans.SIZES},
        "forecasts": {name: forecast(f) for name, f in view["forecasts"].items()},
        "slipping": [r["stage"] for r in view["slipping"]],
    }


class PlanIn(serializers.Serializer):
    milestones = serializers.JSONField(
        required=False, help_text="{stage: {planned_start: YYYY-MM-DD, planned_end: YYYY-MM-DD, owner: username}}"
    )
    estimate = serializers.JSONField(
        required=False,
        help_text="{labeling_hours, compute_hours, storage_gb, planned_items, planned_runs} (null clears one)",
    )
    accept_forecast = serializers.CharField(
        required=False,
        help_text="labeling_hours | compute_hours | storage_gb: take the portal's forecast as the estimate",
    )


class PlanDetail(ProjectAPIMixin, APIView):
    """The plan: milestones (planned and actual), the estimate and the forecasts from measured rates
    (any member); the PM changes it (only the stages and fields sent change)."""

    permission_classes = project_permissions(Role.PM, safe_for_members=True)

    def get(self, request, project_slug):
        return Response(plan_json(self.project))

    @extend_schema(request=PlanIn)
    def put(self, request, project_slug):
        s = PlanIn(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        if d.get("milestones") is not None or d.get("estimate") is not None:
            plans.plan_save(
                project=self.project, user=request.user, milestones=d.get("milestones"), estimate=d.get("estimate")
            )
        if d.get("accept_forecast"):
            plans.forecast_accept(project=self.project, user=request.user, resource=d["accept_forecast"])
        return Response(plan_json(self.project))


class CommentOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    target = serializers.IntegerField(source="target_id")
    author = serializers.CharField(source="author.username", default=None)
    body = serializers.CharField()
    mentions = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField()

    def get_mentions(self, c):
        return sorted(u.username for u in c.mentions.all())


class CommentIn(serializers.Serializer):
    kind = serializers.CharField(help_text="item | run | version | request | alert")
    target = serializers.CharField(help_text="the object's id")
    body = serializers.CharField(allow_blank=True, trim_whitespace=False, help_text="text; @username tells a member")


class CommentList(ProjectAPIMixin, APIView):
    """Comments on one object (``?kind=run&target=12``), oldest first; any member posts one."""

    permission_classes = PROJECT_MEMBER

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, required=True), OpenApiParameter("target", int, required=True)],
        responses=CommentOut(many=True),
    )
    def get(self, request, project_slug):
        spec, obj = comments.target_of(
            self.project, request.query_params.get("kind", ""), request.query_params.get("target", "")
        )
        return Response(CommentOut(comments.comments_on(self.project, spec.kind, obj.pk), many=True).data)

    @extend_schema(request=CommentIn, responses={201: CommentOut})
    def post(self, request, project_slug):
        s = CommentIn(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        c = comments.comment_post(
            project=self.project, user=request.user, kind=d["kind"], target_id=d["target"], body=d["body"]
        )
        return Response(CommentOut(c).data, status=status.HTTP_201_CREATED)


class CommentDetail(ProjectAPIMixin, APIView):
    """One comment; its author edits the text for a while after posting (``comments.EDIT_WINDOW``)."""

    permission_classes = PROJECT_MEMBER

    def _comment(self, pk):
        return get_object_or_404(Comment, project=self.project, pk=pk)

    @extend_schema(responses=CommentOut)
    def get(self, request, project_slug, pk):
        return Response(CommentOut(self._comment(pk)).data)

    class EditIn(serializers.Serializer):
        body = serializers.CharField(allow_blank=True, trim_whitespace=False, help_text="the new text")

    @extend_schema(request=EditIn, responses=CommentOut)
    def patch(self, request, project_slug, pk):
        s = self.EditIn(data=request.data)
        s.is_valid(raise_exception=True)
        c = comments.comment_edit(comment=self._comment(pk), user=request.user, body=s.validated_data["body"])
        return Response(CommentOut(c).data)
