"""Labeling over REST: the workspace's JavaScript talks to these too."""

from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.core import sql
from apps.datasets.models import DatasetVersion, Item
from apps.projects.permissions import PROJECT_MEMBER, ProjectAPIMixin, project_permissions

from . import selectors, services, transfer
from .models import Annotation, LabelClass

SCHEMA_ROLES = (Role.PM, Role.DATA_SCIENTIST)


def conflict_response(exc):
    return Response({"detail": exc.messages[0], "conflict": True}, status=status.HTTP_409_CONFLICT)


class ClassIn(serializers.Serializer):
    id = serializers.IntegerField(required=False, allow_null=True)
    name = serializers.CharField(allow_blank=True, max_length=200)
    color = serializers.CharField(allow_blank=True, max_length=20)
    hotkey = serializers.CharField(allow_blank=True, required=False, default="", max_length=5, trim_whitespace=False)
    order = serializers.IntegerField(required=False, allow_null=True)


class SchemaIn(serializers.Serializer):
    classes = ClassIn(many=True)
    overlap = serializers.IntegerField(required=False)
    overlap_share = serializers.FloatField(required=False)
    lease_seconds = serializers.IntegerField(required=False)
    regions_enabled = serializers.BooleanField(required=False)


def schema_json(project):
    st = services.labeling_settings_for(project)
    return {
        "classes": [selectors.class_json(c) for c in selectors.classes_of(project)],
        "overlap": st.overlap,
        "overlap_share": st.overlap_share,
        "lease_seconds": st.lease_seconds,
        "regions_enabled": st.regions_enabled,
        "reserved_keys": services.RESERVED_KEYS,
    }


class ProjectItemMixin(ProjectAPIMixin):
    # Both lookups run on every label a labeler saves: plain SQL on unique indexes.
    def get_item(self, item_id):

        if not 0 < int(item_id) < 2**63:
            raise Http404("No such item in this project.")
        found = sql.objects(
            Item, f"SELECT * FROM {Item._meta.db_table} WHERE id = %s AND project_id = %s", [item_id, self.project.pk]
        )
        if not found:
            raise Http404("No such item in this project.")
        found[0].project = self.project
        return found[0]

    def get_class(self, value):
        if value in (None, ""):
            raise ValidationError({"label_class": ["Choose a class."]})
        by = "id" if str(value).isdigit() and int(value) < 2**63 else "name"
        found = next(
            iter(
                sql.objects(
                    LabelClass,
                    f"SELECT * FROM {LabelClass._meta.db_table} WHERE project_id = %s AND {by} = %s",
                    [self.project.pk, int(value) if by == "id" else str(value)],
                )
            ),
            None,
        )
        if found is None:
            raise ValidationError({"label_class": [f"No class {value!r} in this project's schema."]})
        return found


class Schema(ProjectAPIMixin, APIView):
    """The label schema: classes (name, colour, hotkey) and queue settings. Any member reads; a PM
    or data scientist replaces it."""

    permission_classes = project_permissions(*SCHEMA_ROLES, safe_for_members=True)

    def get(self, request, project_slug):
        return Response(schema_json(self.project))

    @extend_schema(request=SchemaIn)
    def put(self, request, project_slug):
        s = SchemaIn(data=request.data)
        s.is_valid(raise_exception=True)
        data = s.validated_data
        services.label_schema_update(
            project=self.project, user=request.user, classes=[dict(c) for c in data.pop("classes")], **data
        )
        return Response(schema_json(self.project))


def _count(value, field, low):
    """A whole number from ``low`` to 20 sent by the client as ``field``."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if not low <= n <= 20 or isinstance(value, bool):
        raise ValidationError({field: [f"{field} must be a whole number from {low} to 20."]})
    return n


class QueueMixin:
    def next_items(self, n):
        """Hand out up to ``n`` items of the caller's queue (leased to them until the timeout)."""
        ids = services.queue_next(project=self.project, user=self.request.user, n=n) if n else []
        return selectors.queue_payload(self.project, self.request.user, ids)


class QueueNext(QueueMixin, ProjectAPIMixin, APIView):
    """Hand out the next items of the caller's queue (leased to them until the timeout)."""

    permission_classes = project_permissions(Role.LABELER)

    def post(self, request, project_slug):
        return Response({"items": self.next_items(_count(request.data.get("n", 1), "n", 1))})


class ItemDetail(ProjectItemMixin, APIView):
    """One item as the workspace shows it, with its label history."""

    permission_classes = PROJECT_MEMBER

    def get(self, request, project_slug, item_id):
        item = self.get_item(item_id)
        data = selectors.item_payload(item, user=request.user, project_slug=self.project.slug)
        data["history"] = [
            {
                "at": c.at,
                "user": c.user.username if c.user else None,
                "scope": c.scope,
                "source": c.source,
                "old": c.old,
                "new": c.new,
            }
            for c in selectors.history_of(item)
        ]
        return Response(data)


class LabelIn(serializers.Serializer):
    label_class = serializers.CharField()
    expected_revision = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    regions = serializers.JSONField(required=False)
    next = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=20,
        default=0,
        help_text="Also hand out up to this many next items of your queue "
        "(answered as next_items): save and advance in one round trip.",
    )


class ItemLabelSubmit(QueueMixin, ProjectItemMixin, APIView):
    """Label an item. Name the revision you saw (``expected_revision``): if someone changed the label
    since, the answer is 409 with who and what, and nothing is saved. With ``next`` the answer also
    holds the next items of your queue, as ``queue/next/`` would hand them out."""

    permission_classes = project_permissions(Role.LABELER)

    @extend_schema(request=LabelIn)
    def post(self, request, project_slug, item_id):
        item = self.get_item(item_id)
        s = LabelIn(data=request.data)
        s.is_valid(raise_exception=True)
        try:
            ann = services.annotation_submit(
                item=item,
                user=request.user,
                label_class=self.get_class(s.validated_data["label_class"]),
                regions=s.validated_data.get("regions"),
                expected_revision=s.validated_data.get("expected_revision"),
            )
        except services.LabelConflict as exc:
            return conflict_response(exc)
        data = selectors.item_payload(
            item, user=request.user, project_slug=self.project.slug, label=ann.final, mine=ann
        )
        if s.validated_data["next"]:
            data["next_items"] = self.next_items(s.validated_data["next"])
        return Response(data)


class ItemSkip(QueueMixin, ProjectItemMixin, APIView):
    """Hide an item from you for one lease period. With ``next`` (0 to 20) the answer also holds the
    next items of your queue."""

    permission_classes = project_permissions(Role.LABELER)

    def post(self, request, project_slug, item_id):
        item = self.get_item(item_id)
        n = _count(request.data.get("next", 0), "next", 0)
        services.item_skip(item=item, user=request.user)
        data = {"skipped": item.pk}
        if n:
            data["next_items"] = self.next_items(n)
        return Response(data)


class ItemUndo(ProjectItemMixin, APIView):
    """Take back your last label of the item; it comes back to you."""

    permission_classes = project_permissions(Role.LABELER)

    def post(self, request, project_slug, item_id):
        item = self.get_item(item_id)
        rev = request.data.get("expected_revision")
        if rev not in (None, "") and not str(rev).isdigit():
            raise ValidationError({"expected_revision": ["expected_revision must be a whole number."]})
        try:
            services.annotation_undo(
                item=item, user=request.user, expected_revision=int(rev) if rev not in (None, "") else None
            )
        except services.LabelConflict as exc:
            return conflict_response(exc)
        return Response(selectors.item_payload(item, user=request.user, project_slug=self.project.slug))


class BulkIn(serializers.Serializer):
    items = serializers.ListField(child=serializers.IntegerField(), allow_empty=False, max_length=1000)
    label_class = serializers.CharField()


class BulkLabel(ProjectItemMixin, APIView):
    """Grid mode: apply one class to many items."""

    permission_classes = project_permissions(Role.LABELER)

    @extend_schema(request=BulkIn)
    def post(self, request, project_slug):
        s = BulkIn(data=request.data)
        s.is_valid(raise_exception=True)
        n = services.labels_bulk_set(
            project=self.project,
            user=request.user,
            item_ids=s.validated_data["items"],
            label_class=self.get_class(s.validated_data["label_class"]),
        )
        return Response({"labeled": n})


class Progress(ProjectAPIMixin, APIView):
    """Labeling progress: done by me today, my rate, left, in review, labeled, total. ``?only=mine``
    answers just the first two (cheap at any project size; the rest count the whole project)."""

    permission_classes = PROJECT_MEMBER

    def get(self, request, project_slug):
        only = request.query_params.get("only", "")
        if only not in ("", "mine"):
            raise ValidationError({"only": ["only must be 'mine' or left out."]})
        return Response(selectors.progress_for(self.project, request.user, mine_only=only == "mine"))


class Agreement(ProjectAPIMixin, APIView):
    """Agreement between labelers on overlapping items: overall, per class and per pair."""

    permission_classes = PROJECT_MEMBER

    def get(self, request, project_slug):
        return Response(selectors.agreement_for(self.project))


class ReviewQueue(ProjectAPIMixin, APIView):
    permission_classes = project_permissions(Role.REVIEWER)

    def get(self, request, project_slug):
        return Response(
            [
                {
                    "item": r["item"].pk,
                    "name": str(r["item"]),
                    "annotations": [
                        {"id": a.pk, "user": a.user.username, "label": a.label_class.name, "status": a.status}
                        for a in r["annotations"]
                    ],
                }
                for r in selectors.review_queue(self.project)
            ]
        )


class ResolveIn(serializers.Serializer):
    label_class = serializers.CharField()
    comment = serializers.CharField(allow_blank=True, required=False, default="")


class ReviewResolve(ProjectItemMixin, APIView):
    """A reviewer sets the final label of an item, with a comment."""

    permission_classes = project_permissions(Role.REVIEWER)

    @extend_schema(request=ResolveIn)
    def post(self, request, project_slug, item_id):
        item = self.get_item(item_id)
        s = ResolveIn(data=request.data)
        s.is_valid(raise_exception=True)
        d = services.review_resolve(
            item=item,
            reviewer=request.user,
            label_class=self.get_class(s.validated_data["label_class"]),
            comment=s.validated_data["comment"],
        )
        return Response({"decision": d.pk, "label": d.label_class.name})


class AnnotationReview(ProjectAPIMixin, APIView):
    """A reviewer accepts or rejects one labeler's annotation."""

    permission_classes = project_permissions(Role.REVIEWER)
    accept = True

    def post(self, request, project_slug, annotation_id):
        ann = get_object_or_404(Annotation, pk=annotation_id, item__project=self.project)
        d = services.annotation_review(
            annotation=ann, reviewer=request.user, accept=self.accept, comment=str(request.data.get("comment", ""))
        )
        return Response({"decision": d.pk, "kind": d.kind})


class ImportIn(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.ChoiceField(choices=sorted(transfer.IMPORTERS))


class LabelImport(ProjectAPIMixin, APIView):
    """Import labels for items already in the project: CSV (file_name or sha256, class), a zip of
    class-per-folder images, or boxes as COCO JSON (``kind=coco``). Good rows (boxes) are applied;
    the answer lists every row's (box's) result."""

    permission_classes = project_permissions(*SCHEMA_ROLES)

    @extend_schema(request={"multipart/form-data": ImportIn})
    def post(self, request, project_slug):
        s = ImportIn(data=request.data)
        s.is_valid(raise_exception=True)
        f = s.validated_data["file"]
        report = transfer.IMPORTERS[s.validated_data["kind"]](
            project=self.project, user=request.user, fileobj=f, filename=f.name
        )
        return Response(report.as_dict())


BOX_FORMATS = {
    "coco.json": (transfer.boxes_coco, "application/json"),
    "boxes.csv": (transfer.boxes_csv, "text/csv; charset=utf-8"),
    "yolo.zip": (transfer.boxes_yolo_zip, "application/zip"),
}
FORMATS_HELP = "csv, json, zip (a version's labels) or coco.json, yolo.zip, boxes.csv (labels with their boxes)"


def export_response(version, fmt):
    """The download of ``version`` (a DatasetVersion, or ``transfer.CurrentLabels``) in ``fmt``;
    None for a format it does not have."""
    current = isinstance(version, transfer.CurrentLabels)
    base = version.base if current else f"{version.project.slug}-v{version.number}"
    if fmt in BOX_FORMATS:
        make, content_type = BOX_FORMATS[fmt]
        resp = HttpResponse(make(version), content_type=content_type)
        resp["Content-Disposition"] = f'attachment; filename="{base}.{fmt}"'
        return resp
    if current:
        return None
    if fmt == "csv":
        resp = HttpResponse(transfer.version_csv(version), content_type="text/csv; charset=utf-8")
    elif fmt == "json":
        resp = HttpResponse(transfer.version_json(version), content_type="application/json")
    elif fmt == "zip":
        return FileResponse(
            transfer.version_folders_zip(version),
            as_attachment=True,
            filename=f"{base}.zip",
            content_type="application/zip",
        )
    else:
        return None
    resp["Content-Disposition"] = f'attachment; filename="{base}.{fmt}"'
    return resp


class VersionExport(ProjectAPIMixin, APIView):
    """A ready dataset version's labels: csv, json, or zip (ImageNet-style split/label/ folders)."""

    permission_classes = PROJECT_MEMBER

    def get(self, request, project_slug, number, fmt):

        version = get_object_or_404(DatasetVersion, project=self.project, number=number, status="ready")
        resp = export_response(version, fmt)
        if resp is None:
            return Response({"detail": f"Unknown format {fmt!r}: use {FORMATS_HELP}."}, status=400)
        return resp


class CurrentExport(ProjectAPIMixin, APIView):
    """The project's labels as they are now, with their boxes: coco.json, yolo.zip or boxes.csv."""

    permission_classes = PROJECT_MEMBER

    def get(self, request, project_slug, fmt):
        resp = export_response(transfer.CurrentLabels(self.project), fmt)
        if resp is None:
            return Response({"detail": f"Unknown format {fmt!r}: use coco.json, yolo.zip or boxes.csv."}, status=400)
        return resp
