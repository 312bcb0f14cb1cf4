"""HTML pages of labeling: overview, workspace, grid, schema, review, import/export."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.core.forms import FormActionView
from apps.datasets.models import DatasetVersion, Item
from apps.projects.permissions import ProjectAccessMixin

from . import selectors, services, transfer
from .agreement import kappa_words
from .api import SCHEMA_ROLES, export_response, schema_json
from .forms import GridForm, ImportForm, ResolveForm, ReviewCommentForm, SchemaForm
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


class Grid(ProjectAccessMixin, FormActionView, TemplateView):
    """Bulk work: select many thumbnails, apply one class to all."""

    template_name = "labeling/grid.html"
    read_roles = write_roles = (Role.LABELER,)
    form_class, form_name = GridForm, "grid_form"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        q = self.request.GET
        show = q.get("show") or self.request.POST.get("show") or "unlabeled"
        page = max(1, int(q["page"])) if q.get("page", "").isdigit() else 1
        items, total = selectors.grid_items(self.project, show=show, offset=(page - 1) * 120)
        ctx.update(
            items=items,
            total=total,
            show=show,
            page=page,
            has_next=page * 120 < total,
            classes=selectors.classes_of(self.project),
            grid_form=GridForm(),
        )
        return ctx

    def form_valid(self, form):
        d = form.cleaned_data
        cls = get_object_or_404(LabelClass, project=self.project, pk=d["label_class"])
        n = services.labels_bulk_set(project=self.project, user=self.request.user, item_ids=d["items"], label_class=cls)
        messages.success(self.request, f"{n} images labeled {cls.name}.")
        query = urlencode({"show": d["show"] or "unlabeled"})
        return redirect(f"{reverse('labeling-grid', args=[self.project.slug])}?{query}")


# A new class row proposes a colour no class uses yet, so classes tell apart at a glance.
NEW_CLASS_COLOURS = ["#1a7f4b", "#b42318", "#1d4ed8", "#b54708", "#6b3fa0", "#0e7490", "#be185d", "#4d7c0f"]


class SchemaEdit(ProjectAccessMixin, FormActionView, TemplateView):
    template_name = "labeling/schema.html"
    read_roles = write_roles = SCHEMA_ROLES
    form_class = SchemaForm

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(form=None, reserved=services.RESERVED_KEYS)
        return ctx

    def render_to_response(self, context, **kwargs):
        schema = schema_json(self.project)
        form = context["form"]
        if form is not None and form.is_bound:  # what was sent comes back, to be mended
            p = form.data
            schema["classes"] = (form.cleaned_data or {}).get("classes") or []
            schema.update(
                overlap=p.get("overlap", ""),
                overlap_pct=p.get("overlap_pct", ""),
                lease_minutes=p.get("lease_minutes", ""),
            )
            schema["regions_enabled"] = bool(p.get("regions_enabled"))
        else:
            schema.update(
                overlap_pct=round(schema["overlap_share"] * 100, 6),
                lease_minutes=round(schema["lease_seconds"] / 60, 6),
            )
        classes = list(schema["classes"])
        used = {c["color"].lower() for c in classes}
        free = [c for c in NEW_CLASS_COLOURS if c not in used] or NEW_CLASS_COLOURS
        context.update(
            schema=schema,
            rows=classes
            + [{"id": "", "name": "", "color": free[i % len(free)], "hotkey": "", "order": ""} for i in range(2)],
        )
        return super().render_to_response(context, **kwargs)

    def form_valid(self, form):
        services.label_schema_update(project=self.project, user=self.request.user, **form.schema_data())
        messages.success(self.request, "Label schema saved.")
        return redirect("labeling-schema", self.project.slug)


class Review(ProjectAccessMixin, TemplateView):
    template_name = "labeling/review.html"
    read_roles = write_roles = (Role.REVIEWER,)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        labeler = self.request.GET.get("labeler", "")
        ctx.update(
            disputes=selectors.review_queue(self.project),
            recent=selectors.recent_annotations(self.project, labeler=labeler or None),
            labeler=labeler,
            classes=selectors.classes_of(self.project),
            decisions=selectors.decisions_of(self.project),
            rates=selectors.reviewer_rates(self.project),
        )
        return ctx


class ResolveView(FormActionView, Review):
    """A reviewer sets the final label of a disputed item (its own view, POST only)."""

    http_method_names = ["post"]
    form_class, form_name = ResolveForm, "resolve_form"

    def form_valid(self, form):
        item = get_object_or_404(Item, project=self.project, pk=self.kwargs["item_id"])
        cls = get_object_or_404(LabelClass, project=self.project, pk=form.cleaned_data["label_class"])
        services.review_resolve(
            item=item, reviewer=self.request.user, label_class=cls, comment=form.cleaned_data["comment"]
        )
        messages.success(self.request, f"{item} is now {cls.name}.")
        return redirect("labeling-review", self.project.slug)

    def form_invalid(self, form):
        form.item_pk = self.kwargs["item_id"]  # the disputed item whose form this is
        return super().form_invalid(form)


class AnnotationReviewView(FormActionView, Review):
    """Accept or reject one label (its own view each, POST only); rejecting needs a comment."""

    http_method_names = ["post"]
    form_class, form_name = ReviewCommentForm, "review_form"
    accept = True

    def form_valid(self, form):
        ann = get_object_or_404(Annotation, item__project=self.project, pk=self.kwargs["annotation_id"])
        services.annotation_review(
            annotation=ann, reviewer=self.request.user, accept=self.accept, comment=form.cleaned_data["comment"]
        )
        messages.success(
            self.request, f"{ann.user.username}'s label of {ann.item} {'accepted' if self.accept else 'rejected'}."
        )
        return redirect("labeling-review", self.project.slug)

    def form_invalid(self, form):
        form.annotation_pk = self.kwargs["annotation_id"]
        return super().form_invalid(form)


class Import(ProjectAccessMixin, FormActionView, TemplateView):
    template_name = "labeling/import.html"
    read_roles = write_roles = SCHEMA_ROLES
    form_class = ImportForm

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.setdefault("form", ImportForm())
        return ctx

    def form_valid(self, form):
        f, kind = form.cleaned_data["file"], form.cleaned_data["kind"]
        report = transfer.IMPORTERS[kind](project=self.project, user=self.request.user, fileobj=f, filename=f.name)
        return self.render_to_response(self.get_context_data(form=ImportForm(initial={"kind": kind}), report=report))


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


class LabelerPage(ProjectAccessMixin, TemplateView):
    """One labeler's work: their own page (``me``), also open to the PM, reviewers and managers."""

    template_name = "labeling/labeler.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        me = self.request.user
        name = kwargs["username"]
        user = me if name == "me" else get_object_or_404(get_user_model(), username=name)
        if user != me and not {Role.PM, Role.REVIEWER, Role.MANAGER} & set(self.roles):
            raise PermissionDenied("A labeler's page is theirs, their PM's, reviewers' and managers'.")
        ctx.update(labeler=user, own=user == me, work=selectors.labeler_page(self.project, user))
        return ctx


class CurrentExportFile(ProjectAccessMixin, View):
    def get(self, request, slug, fmt):
        resp = export_response(transfer.CurrentLabels(self.project), fmt)
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
