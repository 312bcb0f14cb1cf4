"""HTML pages of labeling: overview, workspace, grid, schema, review, import/export."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.datasets.models import DatasetVersion, Item
from apps.projects.permissions import ProjectAccessMixin

from . import selectors, services, transfer
from .agreement import kappa_words
from .api import SCHEMA_ROLES, export_response, schema_json
from .models import Annotation, LabelClass

HOTKEYS_HELP = [
    ("s", "skip"),
    ("b / ←", "back"),
    ("u / Ctrl+Z", "undo"),
    ("r", "draw a region"),
    ("Del", "delete the selected region"),
    ("+ / − / wheel", "zoom"),
    ("0", "fit"),
    ("drag", "pan"),
    ("g", "grid mode"),
    ("?", "show or hide keys"),
]


class LabelingOverview(ProjectAccessMixin, TemplateView):
    """Progress and agreement; every member sees it."""

    template_name = "labeling/overview.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        services.queue_sync(project=self.project)
        services.queue_repair(project=self.project)  # so "left in the queue" counts every item
        agreement = selectors.agreement_for(self.project)
        for p in agreement["pairs"]:
            p["words"] = kappa_words(p["kappa"])
        ctx.update(
            progress=selectors.progress_for(self.project, self.request.user),
            agreement=agreement,
            overall_words=kappa_words(agreement["overall"]),
            per_class=[(k, v, kappa_words(v)) for k, v in agreement["per_class"].items()],
            classes=selectors.classes_of(self.project),
            settings=services.labeling_settings_for(self.project),
            stage=selectors.labeling_stage(self.project),
            decisions=selectors.decisions_of(self.project),
            can_label=Role.LABELER in self.roles,
            can_review=Role.REVIEWER in self.roles,
            can_schema=bool(self.roles & set(SCHEMA_ROLES)),
        )
        p = ctx["progress"]
        ctx["pct"] = round(100 * p["labeled"] / p["total"]) if p["total"] else 0
        return ctx


class Workspace(ProjectAccessMixin, TemplateView):
    template_name = "labeling/workspace.html"
    read_roles = (Role.LABELER,)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        schema = schema_json(self.project)
        ctx["schema"] = schema
        ctx["config"] = {
            "schema": schema,
            "api": reverse("api-labeling-schema", args=[self.project.slug]).rsplit("schema/", 1)[0],
            "progress": selectors.progress_for(self.project, self.request.user),
            "grid": reverse("labeling-grid", args=[self.project.slug]),
        }
        ctx["hotkeys_help"] = HOTKEYS_HELP
        return ctx


class Grid(ProjectAccessMixin, View):
    """Bulk work: select many thumbnails, apply one class to all."""

    read_roles = write_roles = (Role.LABELER,)

    def get(self, request, slug):
        show = request.GET.get("show", "unlabeled")
        try:
            page = max(1, int(request.GET.get("page", 1)))
        except ValueError:
            page = 1
        items, total = selectors.grid_items(self.project, show=show, offset=(page - 1) * 120)
        return render(
            request,
            "labeling/grid.html",
            {
                "project": self.project,
                "roles": self.roles,
                "items": items,
                "total": total,
                "show": show,
                "page": page,
                "has_next": page * 120 < total,
                "classes": selectors.classes_of(self.project),
            },
        )

    def post(self, request, slug):
        try:
            cls = get_object_or_404(LabelClass, project=self.project, pk=request.POST.get("label_class") or 0)
            n = services.labels_bulk_set(
                project=self.project, user=request.user, item_ids=request.POST.getlist("items"), label_class=cls
            )
        except (ValidationError, ValueError) as exc:
            messages.error(request, "; ".join(getattr(exc, "messages", [str(exc)])))
        else:
            messages.success(request, f"{n} images labeled {cls.name}.")
        return redirect(f"{reverse('labeling-grid', args=[slug])}?show={request.POST.get('show', 'unlabeled')}")


# A new class row proposes a colour no class uses yet, so classes tell apart at a glance.
NEW_CLASS_COLOURS = ["#1a7f4b", "#b42318", "#1d4ed8", "#b54708", "#6b3fa0", "#0e7490", "#be185d", "#4d7c0f"]


class SchemaEdit(ProjectAccessMixin, View):
    read_roles = write_roles = SCHEMA_ROLES

    def render(self, request, schema, errors=None, status=200):
        classes = list(schema["classes"])
        used = {c["color"].lower() for c in classes}
        free = [c for c in NEW_CLASS_COLOURS if c not in used] or NEW_CLASS_COLOURS
        rows = classes + [
            {"id": "", "name": "", "color": free[i % len(free)], "hotkey": "", "order": ""} for i in range(2)
        ]
        return render(
            request,
            "labeling/schema.html",
            {
                "project": self.project,
                "roles": self.roles,
                "schema": schema,
                "rows": rows,
                "errors": errors or {},
                "reserved": services.RESERVED_KEYS,
            },
            status=status,
        )

    def get(self, request, slug):
        return self.render(request, schema_json(self.project))

    def post(self, request, slug):
        p = request.POST
        classes = []
        for i, name in enumerate(p.getlist("name")):
            row = {
                "id": p.getlist("id")[i],
                "name": name,
                "color": p.getlist("color")[i],
                "hotkey": p.getlist("hotkey")[i],
                "order": p.getlist("order")[i],
            }
            if not (row["name"].strip() or row["id"]):
                continue  # an empty spare row
            if p.get(f"delete-{i}") and row["id"]:
                continue
            classes.append(row)
        try:
            services.label_schema_update(
                project=self.project,
                user=request.user,
                classes=classes,
                overlap=_int(p.get("overlap"), "overlap"),
                overlap_share=_pct(p.get("overlap_pct")),
                lease_seconds=_int(p.get("lease_minutes"), "lease_seconds", 60),
                regions_enabled=bool(p.get("regions_enabled")),
            )
        except ValidationError as exc:
            schema = schema_json(self.project)
            schema["classes"] = classes
            return self.render(request, schema, errors=exc.message_dict, status=400)
        messages.success(request, "Label schema saved.")
        return redirect("labeling-schema", slug)


def _int(value, field, scale=1):
    try:
        return int(float(value) * scale)
    except (TypeError, ValueError):
        raise ValidationError({field: [f"{field.replace('_', ' ').capitalize()} must be a number."]}) from None


def _pct(value):
    try:
        return float(value) / 100
    except (TypeError, ValueError):
        raise ValidationError({"overlap_share": ["The sample share must be a percentage, e.g. 10."]}) from None


class Review(ProjectAccessMixin, View):
    read_roles = write_roles = (Role.REVIEWER,)

    def get(self, request, slug):
        labeler = request.GET.get("labeler", "")
        return render(
            request,
            "labeling/review.html",
            {
                "project": self.project,
                "roles": self.roles,
                "disputes": selectors.review_queue(self.project),
                "recent": selectors.recent_annotations(self.project, labeler=labeler or None),
                "labeler": labeler,
                "classes": selectors.classes_of(self.project),
                "decisions": selectors.decisions_of(self.project),
            },
        )

    def post(self, request, slug):

        action = request.POST.get("action")
        try:
            if action == "resolve":
                item = get_object_or_404(Item, project=self.project, pk=request.POST.get("item") or 0)
                cls = get_object_or_404(LabelClass, project=self.project, pk=request.POST.get("label_class") or 0)
                services.review_resolve(
                    item=item, reviewer=request.user, label_class=cls, comment=request.POST.get("comment", "")
                )
                messages.success(request, f"{item} is now {cls.name}.")
            elif action in ("accept", "reject"):
                ann = get_object_or_404(Annotation, item__project=self.project, pk=request.POST.get("annotation") or 0)
                services.annotation_review(
                    annotation=ann,
                    reviewer=request.user,
                    accept=action == "accept",
                    comment=request.POST.get("comment", ""),
                )
                messages.success(request, f"{ann.user.username}'s label of {ann.item} {action}ed.")
            else:
                messages.error(request, "Unknown review action.")
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        return redirect("labeling-review", slug)


class Import(ProjectAccessMixin, View):
    read_roles = write_roles = SCHEMA_ROLES

    def get(self, request, slug):
        return render(request, "labeling/import.html", {"project": self.project, "roles": self.roles})

    def post(self, request, slug):
        f = request.FILES.get("file")
        kind = request.POST.get("kind")
        error = None
        report = None
        if f is None:
            error = "Choose a file to import."
        elif kind not in ("csv", "folders"):
            error = "Choose what the file holds: a CSV or a zip of class folders."
        else:
            fn = transfer.labels_import_csv if kind == "csv" else transfer.labels_import_folders
            try:
                report = fn(project=self.project, user=request.user, fileobj=f, filename=f.name)
            except ValidationError as exc:
                error = "; ".join(exc.messages)
        return render(
            request,
            "labeling/import.html",
            {"project": self.project, "roles": self.roles, "error": error, "report": report},
            status=400 if error else 200,
        )


class Export(ProjectAccessMixin, TemplateView):
    template_name = "labeling/export.html"

    def get_context_data(self, **kwargs):

        ctx = super().get_context_data(**kwargs)
        ctx["versions"] = DatasetVersion.objects.filter(project=self.project, status="ready")
        return ctx


class ExportFile(ProjectAccessMixin, View):
    def get(self, request, slug, number, fmt):

        version = get_object_or_404(DatasetVersion, project=self.project, number=number, status="ready")
        resp = export_response(version, fmt)
        if resp is None:
            raise Http404("Unknown export format.")
        return resp


class ItemHistory(ProjectAccessMixin, View):
    def get(self, request, slug, item_id):

        item = get_object_or_404(Item, project=self.project, pk=item_id)
        return render(
            request,
            "labeling/history.html",
            {
                "project": self.project,
                "roles": self.roles,
                "item": item,
                "changes": selectors.history_of(item),
                "annotations": Annotation.objects.filter(item=item).select_related("user", "label_class"),
            },
        )
