from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.accounts.services import member_add_by_username, member_remove
from apps.core.forms import FormActionView, PortalForm
from apps.core.models import AuditEvent
from apps.core.stages import project_stages
from apps.projects.permissions import ProjectAccessMixin

from . import comments, services
from . import plan as plans
from .forms import (
    CommentForm,
    CreatorRolesForm,
    ForecastAcceptForm,
    MemberForm,
    PlanForm,
    ScopeDecisionForm,
    ScopeForm,
    TargetFormSet,
    targets_from_formset,
)
from .models import Comment, ScopeStatus
from .selectors import members_of, projects_for_user
from .templatetags.comments import thread

KNOWN_METRICS = [
    "accuracy",
    "macro_f1",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pointing_game",
    "localization_iou",
    "p95_latency_ms",
    "p99_latency_ms",
    "error_rate",
]


def _apply_errors(form, formset_errors, exc):
    for field, msgs in exc.message_dict.items():
        if field == "measurement":
            formset_errors.extend(msgs)
        elif field in form.fields:
            for m in msgs:
                form.add_error(field, m)
        elif field.startswith("check"):
            formset_errors.extend(msgs)
        else:
            form.add_error(None, "; ".join(msgs))


@login_required
def home(request):
    return render(request, "projects/home.html", {"projects": projects_for_user(request.user)})


class ProjectCreateView(LoginRequiredMixin, View):
    def get(self, request):
        return render(
            request,
            "projects/create.html",
            {"form": ScopeForm(), "formset": TargetFormSet(prefix="m"), "roles_form": CreatorRolesForm()},
        )

    def post(self, request):
        form, formset = ScopeForm(request.POST), TargetFormSet(request.POST, prefix="m")
        roles_form = CreatorRolesForm(request.POST)
        errors = []
        if form.is_valid() and formset.is_valid() and roles_form.is_valid():
            data = form.to_data()
            data["measurement"] = targets_from_formset(formset)
            try:
                project = services.project_create(
                    creator=request.user, creator_roles=roles_form.cleaned_data["creator_roles"], **data
                )
            except ValidationError as exc:
                _apply_errors(form, errors, exc)
            else:
                roles = ", ".join(
                    Role(r).label for r in services.creator_roles_clean(roles_form.cleaned_data["creator_roles"])
                )
                messages.success(request, f"Project {project.name} created. Your roles: {roles}.")
                return redirect("project-detail", project.slug)
        return render(
            request,
            "projects/create.html",
            {"form": form, "formset": formset, "measurement_errors": errors, "roles_form": roles_form},
            status=400,
        )


class ProjectDetailView(ProjectAccessMixin, TemplateView):
    template_name = "projects/detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["stages"] = project_stages(self.project)
        ctx["verdict"] = services.checklist_verdict(self.project.checklist)
        ctx["members"] = members_of(self.project)
        ctx["recent"] = AuditEvent.objects.filter(project=self.project).select_related("actor")[:8]
        plan = plans.plan_of(self.project)
        ctx["plan"] = plans.plan_view(self.project, brief=True, plan=plan) if plan.pk else None
        ctx["slipping"] = {r["stage"] for r in ctx["plan"]["slipping"]} if ctx["plan"] else set()
        return ctx


class ScopeView(ProjectAccessMixin, TemplateView):
    """The PM's scope table: any member reads it, a PM edits it here; PM submits, a manager approves
    or returns it (each its own view below)."""

    template_name = "projects/scope.html"
    write_roles = (Role.PM,)

    def _initial(self):
        p = self.project
        return {
            "name": p.name,
            "dataset": p.dataset,
            "dataset_link": p.dataset_link,
            "model": p.model,
            "code_language": p.code_language,
            "goal": p.goal,
            "delivery": "\n".join(p.delivery),
        }

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        p = self.project
        if "form" not in kwargs:
            ctx["form"] = ScopeForm(initial=self._initial(), checklist=p.checklist)
            ctx["formset"] = TargetFormSet(
                prefix="m",
                initial=[
                    {
                        "metric": m["metric"],
                        "comparator": m["comparator"],
                        "target": f"{m['target']:g}",
                        "unit": m.get("unit", ""),
                    }
                    for m in p.measurement
                ],
            )
        ctx.update(
            measurement_errors=kwargs.get("measurement_errors", []),
            verdict=services.checklist_verdict(p.checklist),
            can_edit=Role.PM in self.roles,
            can_approve=Role.MANAGER in self.roles,
            known_metrics=KNOWN_METRICS,
            revisions=p.scope_revisions.select_related("author")[:10],
            ScopeStatus=ScopeStatus,
            submit_form=PortalForm(),
            decision_form=ScopeDecisionForm(),
            override_form=ScopeDecisionForm(),
            gate_why=services.scope_gate(p),
        )
        return ctx

    def post(self, request, slug):
        """Save: the scope form and its targets formset; errors beside their fields, 400."""
        form = ScopeForm(request.POST, checklist=self.project.checklist)
        formset = TargetFormSet(request.POST, prefix="m")
        errors = []
        if form.is_valid() and formset.is_valid():
            data = form.to_data()
            data["measurement"] = targets_from_formset(formset)
            try:
                services.scope_update(project=self.project, user=request.user, data=data)
            except ValidationError as exc:
                _apply_errors(form, errors, exc)
            else:
                messages.success(request, "Scope saved.")
                return redirect("project-scope", slug)
        ctx = self.get_context_data(form=form, formset=formset, measurement_errors=errors)
        return self.render_to_response(ctx, status=400)


class ScopeSubmitView(FormActionView, ScopeView):
    http_method_names = ["post"]
    form_class, form_name = PortalForm, "submit_form"

    def form_valid(self, form):
        services.scope_submit(project=self.project, user=self.request.user)
        messages.success(self.request, "Scope submitted for approval.")
        return redirect("project-scope", self.project.slug)


class ScopeApproveView(FormActionView, ScopeView):
    http_method_names = ["post"]
    write_roles = (Role.MANAGER,)
    form_class, form_name = ScopeDecisionForm, "decision_form"

    def form_valid(self, form):
        services.scope_approve(project=self.project, user=self.request.user, reason=form.cleaned_data["reason"])
        messages.success(self.request, "Scope approved.")
        return redirect("project-scope", self.project.slug)


class ScopeOverrideView(ScopeApproveView):
    """A manager lets training and promotion go on before the scope is approved (a reason; audited)."""

    form_name = "override_form"

    def form_valid(self, form):
        services.scope_gate_override(project=self.project, user=self.request.user, reason=form.cleaned_data["reason"])
        messages.success(
            self.request,
            "Training and promotion may go on before the scope is approved; the reason is in the audit log.",
        )
        return redirect("project-scope", self.project.slug)


class ScopeReturnView(ScopeApproveView):
    def form_valid(self, form):
        services.scope_reject(project=self.project, user=self.request.user, reason=form.cleaned_data["reason"])
        messages.success(self.request, "Scope returned to draft.")
        return redirect("project-scope", self.project.slug)


class RevisionsView(ProjectAccessMixin, TemplateView):
    template_name = "projects/revisions.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        revisions = list(self.project.scope_revisions.select_related("author"))
        ctx["revisions"] = revisions
        a, b = self.request.GET.get("a"), self.request.GET.get("b")
        if revisions and (a or b):
            by_number = {str(r.number): r for r in revisions}
            old, new = by_number.get(a or ""), by_number.get(b or "")
            if old is None or new is None:
                raise Http404("No such revision.")
            ctx["old"], ctx["new"] = old, new
            ctx["diff"] = services.revision_diff(old, new)
        elif len(revisions) >= 2:
            ctx["default_a"], ctx["default_b"] = revisions[1].number, revisions[0].number
        return ctx


class ScopeExportView(ProjectAccessMixin, View):
    def get(self, request, slug, fmt):
        if fmt == "md":
            body, ctype = services.scope_markdown(self.project), "text/markdown; charset=utf-8"
        elif fmt == "csv":
            body, ctype = services.scope_csv(self.project), "text/csv; charset=utf-8"
        else:
            raise Http404("Export as md or csv.")
        resp = HttpResponse(body, content_type=ctype)
        resp["Content-Disposition"] = f'attachment; filename="{self.project.slug}-scope.{fmt}"'
        return resp


class MembersView(ProjectAccessMixin, FormActionView, TemplateView):
    """Every member reads who is in the project; the PM invites an existing user (by username or
    email), changes their roles, and removes them (below)."""

    template_name = "projects/members.html"
    write_roles = (Role.PM,)
    form_class = MemberForm

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(
            members=members_of(self.project),
            form=MemberForm(),
            remove_form=PortalForm(),
            can_manage=Role.PM in self.roles,
            all_roles=Role.choices,
        )
        return ctx

    def form_valid(self, form):
        user, roles = member_add_by_username(
            project=self.project,
            username=form.cleaned_data["username"],
            roles=form.cleaned_data["roles"],
            actor=self.request.user,
        )
        messages.success(self.request, f"{user.username} now has: {', '.join(Role(r).label for r in roles)}.")
        return redirect("project-members", self.project.slug)


class MemberRemoveView(MembersView):
    """The PM removes a member: every role goes; their past work stays theirs (POST only)."""

    http_method_names = ["post"]
    form_class, form_name = PortalForm, "remove_form"

    def form_valid(self, form):
        user = get_object_or_404(get_user_model(), pk=self.kwargs["user_id"])
        member_remove(project=self.project, user=user, actor=self.request.user)
        messages.success(self.request, f"{user.username} is no longer a member; their past work stays theirs.")
        return redirect("project-members", self.project.slug)


class PlanView(ProjectAccessMixin, FormActionView, TemplateView):
    """The plan: every member reads milestones, forecasts and the planned-vs-actual timeline; the PM
    sets dates, owners and the estimate (or takes the forecast, below)."""

    template_name = "projects/plan.html"
    write_roles = (Role.PM,)
    form_class = PlanForm

    def owners(self):
        return [u.username for u, _ in members_of(self.project)]

    def form_kwargs(self):
        return {"owners": self.owners()}

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        view = plans.plan_view(self.project)
        initial = {}
        for r in view["rows"]:
            initial[f"{r['stage']}_start"] = r["planned_start"].isoformat() if r["planned_start"] else ""
            initial[f"{r['stage']}_end"] = r["planned_end"].isoformat() if r["planned_end"] else ""
            initial[f"{r['stage']}_owner"] = r["owner"]
        for field, _, _ in plans.ESTIMATES:
            value = getattr(view["plan"], field)
            initial[field] = "" if value is None else f"{value:g}"
        for field, _ in plans.SIZES:
            value = getattr(view["plan"], field)
            initial[field] = "" if value is None else str(value)
        ctx.update(
            view=view,
            form=PlanForm(initial=initial, owners=self.owners()),
            accept_form=ForecastAcceptForm(),
            can_edit=Role.PM in self.roles,
        )
        return ctx

    def form_valid(self, form):
        milestones, estimate = form.to_plan()
        plans.plan_save(project=self.project, user=self.request.user, milestones=milestones, estimate=estimate)
        messages.success(self.request, "Plan saved.")
        return redirect("project-plan", self.project.slug)


class ForecastAcceptView(PlanView):
    """The PM takes a forecast as the estimate (POST only)."""

    http_method_names = ["post"]
    form_class, form_name = ForecastAcceptForm, "accept_form"

    def form_kwargs(self):
        return {}

    def form_valid(self, form):
        plan = plans.forecast_accept(
            project=self.project, user=self.request.user, resource=form.cleaned_data["resource"]
        )
        field = form.cleaned_data["resource"]
        messages.success(self.request, f"The estimate now takes the forecast: {getattr(plan, field):g}.")
        return redirect("project-plan", self.project.slug)


class CommentsView(ProjectAccessMixin, FormActionView, TemplateView):
    """One object's comments on a page of their own: where the object's page posts, where a failed
    post comes back with the text kept (400), and what a notification can link to. Any member."""

    template_name = "projects/comments.html"
    form_class = CommentForm

    def target(self):
        try:
            return comments.target_of(self.project, self.kwargs["kind"], self.kwargs["target_id"])
        except ValidationError as exc:
            raise Http404(" ".join(exc.messages)) from None

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        spec, obj = self.target()
        ctx.update(thread(self.project, spec.kind, obj.pk, self.request.user, form=ctx.get("form")))
        ctx.update(spec=spec, target=obj, target_url=spec.url(self.project, obj), next="")
        return ctx

    def form_valid(self, form):
        spec, obj = self.target()
        comment = comments.comment_post(
            project=self.project,
            user=self.request.user,
            kind=spec.kind,
            target_id=obj.pk,
            body=form.cleaned_data["body"],
        )
        back = form.cleaned_data["next"]
        if not (
            back.startswith(f"/p/{self.project.slug}/") and url_has_allowed_host_and_scheme(back, allowed_hosts=None)
        ):
            back = reverse("project-comments", args=[self.project.slug, spec.kind, obj.pk])
        return redirect(f"{back}#comment-{comment.pk}")


class CommentEditView(ProjectAccessMixin, FormActionView, TemplateView):
    """The author edits a comment for a while after posting it."""

    template_name = "projects/comment_edit.html"
    form_class = CommentForm

    def comment(self):
        comment = get_object_or_404(Comment, project=self.project, pk=self.kwargs["pk"])
        why = comments.editable(comment, self.request.user)
        if why:
            raise PermissionDenied(why)
        return comment

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        comment = self.comment()
        spec, obj = comments.target_of(self.project, comment.kind, comment.target_id)
        ctx.setdefault("form", CommentForm(initial={"body": comment.body}))
        ctx.update(comment=comment, spec=spec, target=obj, target_url=spec.url(self.project, obj))
        return ctx

    def form_valid(self, form):
        comment = comments.comment_edit(comment=self.comment(), user=self.request.user, body=form.cleaned_data["body"])
        spec, obj = comments.target_of(self.project, comment.kind, comment.target_id)
        return redirect(spec.url(self.project, obj) + f"#comment-{comment.pk}")


class AuditLogView(ProjectAccessMixin, TemplateView):
    template_name = "projects/audit.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        qs = AuditEvent.objects.filter(project=self.project).select_related("actor")
        action = self.request.GET.get("action", "").strip()
        if action:
            qs = qs.filter(action__startswith=action)
        ctx["page"] = Paginator(qs, 50).get_page(self.request.GET.get("page"))
        ctx["action"] = action
        ctx["actions"] = (
            AuditEvent.objects.filter(project=self.project).order_by().values_list("action", flat=True).distinct()
        )
        return ctx
