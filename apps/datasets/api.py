"""REST API of the datasets app: resumable uploads, import jobs, items, versions."""

from django.conf import settings
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.projects.permissions import ProjectAPIMixin, project_permissions

from . import selectors, services
from .models import DatasetVersion, ImportJob, Upload

DS_WRITES = project_permissions(Role.DATA_SCIENTIST, safe_for_members=True)
FILE_PAGE = 200


class UploadOut(serializers.ModelSerializer):
    complete = serializers.BooleanField(read_only=True)

    class Meta:
        model = Upload
        fields = ["id", "filename", "size", "offset", "complete", "job", "created_at"]


class UploadIn(serializers.Serializer):
    filename = serializers.CharField(max_length=500, help_text="The file's name, or its path inside a dropped folder")
    size = serializers.IntegerField(min_value=0)


class UploadCreate(ProjectAPIMixin, APIView):
    """Start a resumable upload: then PUT chunks to its URL with the Upload-Offset header."""

    permission_classes = project_permissions(Role.DATA_SCIENTIST)

    @extend_schema(request=UploadIn, responses={201: UploadOut})
    def post(self, request, project_slug):
        s = UploadIn(data=request.data)
        s.is_valid(raise_exception=True)
        upload = services.upload_create(project=self.project, user=request.user, **s.validated_data)
        data = UploadOut(upload).data
        data["chunk_size"] = settings.DATASET_UPLOAD_CHUNK_BYTES
        return Response(data, status=status.HTTP_201_CREATED)


class UploadDetail(ProjectAPIMixin, APIView):
    """GET: how many bytes the server has (resume from there). PUT: append the raw body at the
    offset given in the Upload-Offset header (or ?offset=); a wrong offset answers 409 with the
    right one."""

    permission_classes = project_permissions(Role.DATA_SCIENTIST)
    parser_classes = []  # the body is raw bytes, read as a stream

    def _upload(self, upload_id):
        upload = Upload.objects.filter(project=self.project, pk=upload_id).first()
        if upload is None:
            raise Http404("No such upload.")
        return upload

    @extend_schema(responses=UploadOut)
    def get(self, request, project_slug, upload_id):
        return Response(UploadOut(self._upload(upload_id)).data)

    @extend_schema(
        request={"application/octet-stream": bytes},
        responses=UploadOut,
        parameters=[OpenApiParameter("Upload-Offset", int, location="header")],
    )
    def put(self, request, project_slug, upload_id):
        upload = self._upload(upload_id)
        raw = request.headers.get("Upload-Offset", request.query_params.get("offset"))
        try:
            offset = int(raw)
        except (TypeError, ValueError):
            return Response({"offset": ["Send the chunk's starting byte in the Upload-Offset header."]}, status=400)
        limit = settings.DATASET_UPLOAD_CHUNK_BYTES * 4
        data = request._request.read(limit + 1)
        if len(data) > limit:
            return Response({"chunk": [f"A chunk may hold at most {limit} bytes."]}, status=413)
        try:
            upload = services.upload_chunk_append(upload=upload, offset=offset, data=data)
        except services.OffsetMismatch as exc:
            return Response({"detail": exc.messages[0], "offset": exc.offset}, status=status.HTTP_409_CONFLICT)
        return Response(UploadOut(upload).data)


class ImportJobOut(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)
    url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "source",
            "labels_from_folders",
            "total",
            "processed",
            "accepted",
            "duplicates",
            "rejected",
            "skipped",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "url",
        ]

    def get_url(self, obj) -> str:
        return reverse("datasets-import", args=[obj.project.slug, obj.pk])


class ImportIn(serializers.Serializer):
    uploads = serializers.ListField(
        child=serializers.UUIDField(), required=False, help_text="Ids of finished resumable uploads"
    )
    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        help_text="Or: the files themselves (multipart); zips are unpacked",
    )
    labels_from_folders = serializers.BooleanField(default=False)


class ImportList(ProjectAPIMixin, APIView):
    """Import jobs of the project (any member); start one (data scientist) from finished uploads
    or from files sent in this request (multipart ``files``)."""

    permission_classes = DS_WRITES
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(responses=ImportJobOut(many=True))
    def get(self, request, project_slug):
        jobs = (
            ImportJob.objects.filter(project=self.project).select_related("created_by", "project").order_by("-pk")[:50]
        )
        return Response(ImportJobOut(jobs, many=True).data)

    @extend_schema(request=ImportIn, responses={201: ImportJobOut})
    def post(self, request, project_slug):
        files = request.FILES.getlist("files") if hasattr(request, "FILES") else []
        labels = str(request.data.get("labels_from_folders", "")).lower() in ("1", "true", "on", "yes")
        if files:
            job = services.import_files_start(
                project=self.project,
                user=request.user,
                files=files,
                labels_from_folders=labels,
                names=request.data.getlist("names") or None,
            )
        else:
            s = ImportIn(data=request.data)
            s.is_valid(raise_exception=True)
            job = services.import_uploads_start(
                project=self.project,
                user=request.user,
                upload_ids=s.validated_data.get("uploads") or [],
                labels_from_folders=s.validated_data["labels_from_folders"],
            )
        return Response(ImportJobOut(job).data, status=status.HTTP_201_CREATED)


class ImportDetail(ProjectAPIMixin, APIView):
    """One import job: its status and counts, and its per-file results (?result=rejected,
    ?after=<last file id> for the next page)."""

    permission_classes = DS_WRITES

    @extend_schema(parameters=[OpenApiParameter("result", str), OpenApiParameter("after", int)])
    def get(self, request, project_slug, job_id):
        job = ImportJob.objects.filter(project=self.project, pk=job_id).select_related("project", "created_by").first()
        if job is None:
            raise Http404("No such import.")
        files = job.files.filter(kind="image").order_by("id")
        if request.query_params.get("result"):
            files = files.filter(result=request.query_params["result"])
        after = request.query_params.get("after")
        if after and after.isdigit():
            files = files.filter(id__gt=int(after))
        rows = list(files.values("id", "name", "archive_name", "result", "reason", "label", "item_id")[: FILE_PAGE + 1])
        failed_archives = list(
            job.files.filter(kind="archive", result="rejected").values("id", "name", "result", "reason")
        )
        return Response(
            {
                **ImportJobOut(job).data,
                "files": rows[:FILE_PAGE],
                "archives_rejected": failed_archives,
                "next_after": rows[FILE_PAGE - 1]["id"] if len(rows) > FILE_PAGE else None,
            }
        )


def _item_json(row, project):
    item = row["item"]
    return {
        "id": item.pk,
        "sha256": item.sha256,
        "name": item.original_name,
        "width": item.width,
        "height": item.height,
        "mode": item.mode,
        "format": item.format,
        "bytes": item.bytes,
        "label": row["label"],
        "split": row["split"],
        "image_url": reverse("datasets-item-image", args=[project.slug, item.pk]),
        "thumbnail_url": reverse("datasets-item-thumb", args=[project.slug, item.pk]),
    }


class ItemList(ProjectAPIMixin, APIView):
    """Items, newest first, by seek pagination: pass ``after`` = the ``next_after`` of the last page."""

    permission_classes = DS_WRITES

    @extend_schema(parameters=[OpenApiParameter(n, str) for n in ("label", "status", "version", "split", "after")])
    def get(self, request, project_slug):
        q = request.query_params
        version = None
        if q.get("version"):
            version = (
                DatasetVersion.objects.filter(project=self.project, number=q["version"]).first()
                if q["version"].isdigit()
                else None
            )
            if version is None:
                raise Http404("No such version.")
        after = int(q["after"]) if q.get("after", "").isdigit() else None
        page = selectors.items_page(
            self.project,
            label=q.get("label", ""),
            status=q.get("status", ""),
            version=version,
            split=q.get("split", ""),
            after=after,
        )
        return Response({"results": [_item_json(r, self.project) for r in page.rows], "next_after": page.next_cursor})


class VersionOut(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)
    runs = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = [
            "number",
            "name",
            "note",
            "status",
            "seed",
            "fractions",
            "split_from",
            "content_hash",
            "item_count",
            "counts",
            "classes",
            "created_by",
            "created_at",
            "runs",
        ]

    def get_runs(self, obj) -> list:
        return [{"id": r.pk, "name": str(r)} for r in selectors.version_runs(obj)]


class VersionIn(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, default="")
    note = serializers.CharField(required=False, allow_blank=True, default="")
    seed = serializers.IntegerField(required=False, default=0)
    fractions = serializers.JSONField(required=False, help_text='{"train": 0.7, "val": 0.15, "test": 0.15}')
    split_from = serializers.ChoiceField(
        ["seeded", "folders"],
        default="seeded",
        help_text=(
            "seeded: a stratified split fixed by the seed; folders: keep the split the upload's train/, val/, "
            "test/ folders give (items under none of them are split seeded)"
        ),
    )


class VersionList(ProjectAPIMixin, APIView):
    """Dataset versions (any member); freeze a new one from the current labels (data scientist)."""

    permission_classes = DS_WRITES

    @extend_schema(responses=VersionOut(many=True))
    def get(self, request, project_slug):
        return Response(VersionOut(self.project.dataset_versions.select_related("created_by"), many=True).data)

    @extend_schema(request=VersionIn, responses={201: VersionOut})
    def post(self, request, project_slug):
        s = VersionIn(data=request.data)
        s.is_valid(raise_exception=True)
        version = services.dataset_version_create(project=self.project, user=request.user, **s.validated_data)
        return Response(VersionOut(version).data, status=status.HTTP_201_CREATED)


class VersionDetail(ProjectAPIMixin, APIView):
    permission_classes = DS_WRITES

    @extend_schema(responses=VersionOut)
    def get(self, request, project_slug, number):
        version = self.project.dataset_versions.filter(number=number).first()
        if version is None:
            raise Http404("No such version.")
        return Response(VersionOut(version).data)


class VersionDiff(ProjectAPIMixin, APIView):
    permission_classes = DS_WRITES

    @extend_schema(
        parameters=[OpenApiParameter("a", int), OpenApiParameter("b", int)],
        summary="Items added, removed and relabeled from version a to version b",
    )
    def get(self, request, project_slug):
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not (a.isdigit() and b.isdigit()):
            return Response({"detail": "Give two version numbers: ?a=1&b=2."}, status=400)
        versions = {v.number: v for v in self.project.dataset_versions.filter(number__in=[int(a), int(b)])}
        if int(a) not in versions or int(b) not in versions:
            raise Http404("No such version.")
        return Response({"a": int(a), "b": int(b), **selectors.version_diff(versions[int(a)], versions[int(b)])})
