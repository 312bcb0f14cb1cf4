"""Training over the API: runs and sweeps (launch/cancel/rerun: data scientists; read: members)."""

import json

from django.http import FileResponse, Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.core.storage import blob_open
from apps.datasets.models import DatasetVersion
from apps.projects.permissions import PROJECT_MEMBER, ProjectAPIMixin, project_permissions

from . import selectors, services
from .models import Artifact, Sweep, TrainingRun

DS_WRITES = project_permissions(Role.DATA_SCIENTIST, safe_for_members=True)
DS_ONLY = project_permissions(Role.DATA_SCIENTIST)


class ArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = ["kind", "filename", "sha256", "size", "created_at"]


class RunSerializer(serializers.ModelSerializer):
    dataset_version = serializers.IntegerField(source="dataset_version.number")
    dataset_version_id = serializers.IntegerField()
    progress = serializers.FloatField(read_only=True)
    eta_seconds = serializers.FloatField(read_only=True, allow_null=True)
    artifacts = ArtifactSerializer(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "name",
            "status",
            "dataset_version",
            "dataset_version_id",
            "config",
            "queue",
            "sweep",
            "trial_index",
            "retry_of",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "progress",
            "eta_seconds",
            "epochs_total",
            "epochs_done",
            "cancel_requested",
            "error",
            "best_val",
            "test_metrics",
            "training_seconds",
            "estimated_seconds",
            "estimate_basis",
            "epochs_run",
            "code_version",
            "tf_version",
            "model_card",
            "artifacts",
        ]


def dataset_version_by_number(project, number):
    """The API names a dataset version by its number in the project (v3 → 3), as the versions API
    shows it; never by a database id (see docs/api.md, references)."""

    version = DatasetVersion.objects.filter(project=project, number=number).first()
    if version is None:
        numbers = list(
            DatasetVersion.objects.filter(project=project).order_by("number").values_list("number", flat=True)
        )
        known = ", ".join(f"{n}" for n in numbers[-10:]) or "none yet"
        raise serializers.ValidationError(
            {"dataset_version": [f"This project has no dataset version number {number} (its numbers: {known})."]}
        )
    return version


class RunCreateSerializer(serializers.Serializer):
    dataset_version = serializers.IntegerField(
        min_value=1, help_text="the dataset version's number in this project (v3 → 3), as the versions API shows it"
    )
    name = serializers.CharField(required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=dict, help_text="hyperparameters; see TrainConfig")
    base_model = serializers.FileField(required=False, help_text="a .keras file to fine-tune (architecture=finetune)")

    def validate_config(self, value):
        if isinstance(value, str):  # multipart: the config arrives as a JSON string
            try:
                value = json.loads(value or "{}")
            except json.JSONDecodeError as exc:
                raise serializers.ValidationError(f"config is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise serializers.ValidationError("config must be an object of hyperparameters.")
        return value


class RunListCreate(ProjectAPIMixin, generics.ListAPIView):
    """Runs of the project (members); launch one (data scientists)."""

    serializer_class = RunSerializer
    queryset = TrainingRun.objects.none()  # for the schema; get_queryset scopes to the project
    permission_classes = DS_WRITES
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return selectors.runs_of(self.project).prefetch_related("artifacts")

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer})
    def post(self, request, project_slug):
        s = RunCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        run = services.training_run_create(
            project=self.project,
            user=request.user,
            dataset_version=dataset_version_by_number(self.project, d["dataset_version"]),
            config=d["config"],
            name=d["name"],
            base_model_file=d.get("base_model"),
        )
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


class RunEstimate(ProjectAPIMixin, APIView):
    """How long a run would take, before launching it (data scientists): the same body as a launch;
    nothing is queued. Answers seconds, a sentence and what the figure rests on."""

    permission_classes = DS_ONLY

    @extend_schema(request=RunCreateSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, project_slug):
        s = RunCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        return Response(
            services.training_run_estimate(
                project=self.project,
                dataset_version=dataset_version_by_number(self.project, d["dataset_version"]),
                config=d["config"],
            )
        )


class RunDetail(ProjectAPIMixin, generics.RetrieveAPIView):
    serializer_class = RunSerializer
    permission_classes = PROJECT_MEMBER

    def get_object(self):
        return selectors.run_get(self.project, self.kwargs["pk"])


class RunLive(ProjectAPIMixin, APIView):
    """What the run page polls: status, progress, ETA, epochs so far and the log."""

    permission_classes = PROJECT_MEMBER

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Status, progress, ETA, epochs so far and the log")
    def get(self, request, project_slug, pk):
        return Response(selectors.run_live(selectors.run_get(self.project, pk)))


def _run_action(name, fn, doc):
    class View(ProjectAPIMixin, APIView):
        permission_classes = DS_ONLY

        @extend_schema(request=None, responses=RunSerializer, summary=doc)
        def post(self, request, project_slug, pk):
            run = fn(run=selectors.run_get(self.project, pk), user=request.user)
            return Response(
                RunSerializer(run).data,
                status=status.HTTP_201_CREATED if fn is services.training_run_rerun else status.HTTP_200_OK,
            )

    View.__name__ = name
    return View


RunCancel = _run_action("RunCancel", services.training_run_cancel, "Cancel a queued or running run")
RunRerun = _run_action("RunRerun", services.training_run_rerun, "Rerun (retry) a finished run's config")


class RunArtifact(ProjectAPIMixin, APIView):
    permission_classes = PROJECT_MEMBER

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        summary="Download an artifact (keras, savedmodel, model_card); X-Content-SHA256 carries its hash",
    )
    def get(self, request, project_slug, pk, kind):
        run = selectors.run_get(self.project, pk)
        art = run.artifacts.filter(kind=kind).select_related("blob").first()
        if art is None:
            raise Http404("This run has no such artifact.")
        resp = FileResponse(blob_open(art.blob), as_attachment=True, filename=f"run{run.pk}-{art.filename}")
        resp["X-Content-SHA256"] = art.sha256
        return resp


class Misclassified(ProjectAPIMixin, APIView):
    """Test images the run got wrong (GET, members; ?true=&pred= for one confusion-matrix cell);
    send some to the labeling queue for a second look (POST, data scientists or reviewers)."""

    permission_classes = project_permissions(Role.DATA_SCIENTIST, Role.REVIEWER, safe_for_members=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("true", str),
            OpenApiParameter("pred", str),
            OpenApiParameter("heatmaps", bool, description="include each image's heatmap (data URI)"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, project_slug, pk):
        run = selectors.run_get(self.project, pk)
        rows = selectors.misclassified(run, request.query_params.get("true"), request.query_params.get("pred"))
        with_heat = request.query_params.get("heatmaps") in ("1", "true")
        for r in rows:
            r["image_url"] = reverse("datasets-item-thumb", args=[self.project.slug, r["item"]])
            sha = r.pop("heatmap", "")
            r["has_heatmap"] = bool(sha)
            if with_heat:
                r["heatmap_url"] = selectors.heatmap_data_uri(sha)
        return Response(rows)

    class In(serializers.Serializer):
        items = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)

    @extend_schema(request=In, responses=OpenApiTypes.OBJECT)
    def post(self, request, project_slug, pk):
        s = self.In(data=request.data)
        s.is_valid(raise_exception=True)
        run = selectors.run_get(self.project, pk)
        queued = services.misclassified_send_to_review(run=run, item_ids=s.validated_data["items"], user=request.user)
        return Response({"requested": len(s.validated_data["items"]), "queued": queued})


class SweepSerializer(serializers.ModelSerializer):
    runs = serializers.SerializerMethodField()
    best_run = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Sweep
        fields = [
            "id",
            "name",
            "status",
            "method",
            "dataset_version",
            "base_config",
            "space",
            "max_trials",
            "metric",
            "best_run",
            "created_at",
            "finished_at",
            "error",
            "runs",
        ]

    def get_runs(self, obj) -> list:
        return [
            {"id": r.pk, "trial": r.trial_index, "status": r.status, "config": r.config, "best_val": r.best_val}
            for r in obj.runs.order_by("trial_index")
        ]


class SweepCreateSerializer(serializers.Serializer):
    dataset_version = serializers.IntegerField(
        min_value=1, help_text="the dataset version's number in this project (v3 → 3), as the versions API shows it"
    )
    name = serializers.CharField(required=False, allow_blank=True, default="")
    method = serializers.CharField(default="grid")
    base_config = serializers.JSONField(required=False, default=dict)
    space = serializers.JSONField(help_text='{"learning_rate": [0.001, 0.0003], "batch_size": [8, 16]}')
    max_trials = serializers.IntegerField(default=4)
    metric = serializers.CharField(default="val_accuracy")


class SweepListCreate(ProjectAPIMixin, generics.ListAPIView):
    serializer_class = SweepSerializer
    queryset = Sweep.objects.none()  # for the schema; get_queryset scopes to the project
    permission_classes = DS_WRITES

    def get_queryset(self):
        return selectors.sweeps_of(self.project)

    @extend_schema(request=SweepCreateSerializer, responses={201: SweepSerializer})
    def post(self, request, project_slug):
        s = SweepCreateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = {
            **s.validated_data,
            "dataset_version": dataset_version_by_number(self.project, s.validated_data["dataset_version"]),
        }
        sweep = services.sweep_create(project=self.project, user=request.user, **data)
        return Response(SweepSerializer(sweep).data, status=status.HTTP_201_CREATED)


class SweepDetail(ProjectAPIMixin, generics.RetrieveAPIView):
    serializer_class = SweepSerializer
    permission_classes = PROJECT_MEMBER

    def get_object(self):
        return services.sweep_refresh(sweep_id=selectors.sweep_get(self.project, self.kwargs["pk"]).pk)


class SweepCancel(ProjectAPIMixin, APIView):
    permission_classes = DS_ONLY

    @extend_schema(request=None, responses=SweepSerializer)
    def post(self, request, project_slug, pk):
        sweep = services.sweep_cancel(sweep=selectors.sweep_get(self.project, pk), user=request.user)
        return Response(SweepSerializer(sweep).data)
