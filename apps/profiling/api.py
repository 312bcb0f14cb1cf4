"""Profiling over the API: runs and their profiles, the assertion document (JSON or YAML), the gate."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.core.jobs import JobStatus
from apps.projects.permissions import PROJECT_MEMBER, ProjectAPIMixin, project_permissions

from . import assertions as checks
from . import selectors, services
from .compare import compare_profiles

DS_OR_READ = project_permissions(Role.DATA_SCIENTIST, safe_for_members=True)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


class TextDocumentParser(parsers.BaseParser):
    """A YAML (or plain-text JSON) document, handed on as text to be validated by the service."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return stream.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"The document is not UTF-8 text: {exc}") from exc


class TextYamlParser(TextDocumentParser):
    media_type = "text/*"


class ResultSerializer(serializers.Serializer):
    check = serializers.CharField(source="check_name")
    title = serializers.CharField()
    severity = serializers.CharField()
    passed = serializers.BooleanField()
    measured = serializers.JSONField()
    bound = serializers.CharField()
    message = serializers.CharField()
    params = serializers.JSONField()


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField(source="version.number")
    status = serializers.CharField()
    processed = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username", default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    heartbeat_at = serializers.DateTimeField()
    error = serializers.CharField()
    summary = serializers.JSONField()
    results = ResultSerializer(many=True)


class StartSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="the dataset version number")


class RunListStart(ProjectAPIMixin, APIView):
    """Profile runs of the project (any member); start one for a version (data scientist)."""

    permission_classes = DS_OR_READ

    @extend_schema(responses=RunSerializer(many=True), parameters=[OpenApiParameter("version", int)])
    def get(self, request, project_slug):
        runs = selectors.runs_of(self.project).prefetch_related("results")
        if request.query_params.get("version"):
            try:
                runs = runs.filter(version__number=int(request.query_params["version"]))
            except ValueError:
                return Response({"version": ["Give a version number."]}, status=400)
        return Response(RunSerializer(runs[:100], many=True).data)

    @extend_schema(request=StartSerializer, responses=RunSerializer)
    def post(self, request, project_slug):
        s = StartSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        version = selectors.version_of(self.project, s.validated_data["version"])
        run = services.profile_run_start(version=version, user=request.user)
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunDetail(ProjectAPIMixin, APIView):
    permission_classes = PROJECT_MEMBER

    @extend_schema(responses=RunSerializer)
    def get(self, request, project_slug, run_id):
        return Response(RunSerializer(selectors.run_of(self.project, run_id)).data)


class RunProfile(ProjectAPIMixin, APIView):
    """The compact profile (fixed-bin histograms, quantiles, counts, duplicates, outliers): what
    monitoring compares production inputs against."""

    permission_classes = PROJECT_MEMBER

    @extend_schema(responses=dict)
    def get(self, request, project_slug, run_id):
        run = selectors.run_of(self.project, run_id)
        if run.status != JobStatus.SUCCEEDED:
            return Response({"detail": f"Profile #{run.pk} is {run.status}; it has no profile yet."}, status=409)
        return Response(run.profile)


class RunCancel(ProjectAPIMixin, APIView):
    permission_classes = project_permissions(Role.DATA_SCIENTIST)

    @extend_schema(request=None, responses=RunSerializer)
    def post(self, request, project_slug, run_id):
        run = services.profile_run_cancel(run=selectors.run_of(self.project, run_id), user=request.user)
        return Response(RunSerializer(run).data)


def _document_response(request, doc):
    if request.query_params.get("as") == "yaml" or "yaml" in request.headers.get("Accept", ""):
        return HttpResponse(checks.to_yaml(doc), content_type="application/yaml; charset=utf-8")
    return Response(doc)


class RunSuggest(ProjectAPIMixin, APIView):
    """Assertions proposed from this (trusted) profile, as a document to review and PUT."""

    permission_classes = PROJECT_MEMBER

    @extend_schema(responses=dict, parameters=[OpenApiParameter("as", str, enum=["json", "yaml"])])
    def get(self, request, project_slug, run_id):
        run = selectors.run_of(self.project, run_id)
        if run.status != JobStatus.SUCCEEDED:
            return Response({"detail": "Suggestions need a succeeded profile."}, status=409)
        return _document_response(request, checks.to_document(checks.suggest(run.profile)))


class Compare(ProjectAPIMixin, APIView):
    permission_classes = PROJECT_MEMBER

    @extend_schema(parameters=[OpenApiParameter("a", int), OpenApiParameter("b", int)], responses=dict)
    def get(self, request, project_slug):
        try:
            a, b = int(request.query_params["a"]), int(request.query_params["b"])
        except (KeyError, ValueError):
            return Response({"detail": "Give two profile run ids: ?a=1&b=2."}, status=400)
        ra, rb = selectors.run_of(self.project, a), selectors.run_of(self.project, b)
        if not (ra.profile and rb.profile):
            return Response({"detail": "Both profiles must have succeeded."}, status=409)
        return Response({"a": a, "b": b, "differences": compare_profiles(ra.profile, rb.profile)})


class AssertionDocument(ProjectAPIMixin, APIView):
    """The project's assertions as one document: GET (any member; ``?as=yaml`` or Accept: yaml for
    YAML), PUT to replace them all (data scientist; JSON body or a YAML body with a YAML content
    type). A document with a bad entry is refused whole, with every problem named."""

    permission_classes = DS_OR_READ
    parser_classes = [parsers.JSONParser, TextDocumentParser, TextYamlParser]

    @extend_schema(responses=dict, parameters=[OpenApiParameter("as", str, enum=["json", "yaml"])])
    def get(self, request, project_slug):
        return _document_response(request, checks.to_document(services.assertion_rules_for(self.project)))

    @extend_schema(request=dict, responses=dict)
    def put(self, request, project_slug):
        rules = services.assertions_replace(project=self.project, user=request.user, document=request.data)
        return _document_response(request, checks.to_document(rules))


class GateSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    passed = serializers.BooleanField()
    failures = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    profile_run = serializers.IntegerField(allow_null=True)
    overridden_by = serializers.CharField(allow_null=True)
    override_reason = serializers.CharField(allow_null=True)
    message = serializers.CharField()


def _gate_data(version, g):
    return {
        "version": version.number,
        "passed": g.passed,
        "failures": g.failures,
        "warnings": g.warnings,
        "profile_run": g.profile_run.pk if g.profile_run else None,
        "overridden_by": (g.override.user.username if g.override and g.override.user else None),
        "override_reason": g.override.reason if g.override else None,
        "message": g.message,
    }


class Gate(ProjectAPIMixin, APIView):
    permission_classes = PROJECT_MEMBER

    @extend_schema(responses=GateSerializer)
    def get(self, request, project_slug, number):
        version = selectors.version_of(self.project, number)
        return Response(_gate_data(version, services.gate_check(version)))


class OverrideSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, help_text="why this version may be trained on anyway")


class GateOverride(ProjectAPIMixin, APIView):
    permission_classes = project_permissions(Role.DATA_SCIENTIST)

    @extend_schema(request=OverrideSerializer, responses=GateSerializer)
    def post(self, request, project_slug, number):
        version = selectors.version_of(self.project, number)
        s = OverrideSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.gate_override(version=version, user=request.user, reason=s.validated_data["reason"])
        return Response(_gate_data(version, services.gate_check(version)), status=201)
