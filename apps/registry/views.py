"""Registry pages: models and versions (with lineage), the approval inbox, a request beside the
production version, settings and webhooks, and the user's notifications."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.core.forms import FormActionView, PortalForm
from apps.projects.models import ScopeStatus
from apps.projects.permissions import ProjectAccessMixin
from apps.training.models import TrainingRun

from . import bundle, charts, gate, selectors, services
from .card import card_markdown
from .exports import KINDS, TITLES
from .forms import (
    AliasForm,
    ApproveForm,
    CommentForm,
    MarkReadForm,
    PromoteForm,
    RegisterForm,
    RollbackForm,
    SettingsForm,
    StageForm,
    WebhookForm,
)
from .models import Approval, Notification, RequestStatus, Stage, Webhook

DS = (Role.DATA_SCIENTIST,)
MANAGER = (Role.MANAGER,)


def exports_rows(version):
    """The version's exports with their titles and stored files, in KINDS order."""

    rows = sorted(version.exports.all(), key=lambda e: KINDS.index(e.kind) if e.kind in KINDS else 99)
    for e in rows:
        e.title, e.file = TITLES.get(e.kind, e.kind), version.artifacts.get(e.kind)
    return rows


class IndexView(ProjectAccessMixin, TemplateView):
    template_name = "registry/index.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = []
        for rm in selectors.models_of(self.project):
            rows.append({"model": rm, "production": selectors.production_of(rm), "latest": rm.versions.first()})
        ctx.update(
            models=rows,
            runs=selectors.registrable_runs(self.project)[:100],
            open_requests=selectors.requests_of(self.project, RequestStatus.OPEN),
            can_register=Role.DATA_SCIENTIST in self.roles,
            chosen_run=self.request.GET.get("run", ""),
        )
        return ctx


class RegisterView(FormActionView, IndexView):
    http_method_names = ["post"]
    read_roles = write_roles = DS
    form_class, form_name = RegisterForm, "register_form"

    def form_valid(self, form):
        d = form.cleaned_data
        run = TrainingRun.objects.filter(project=self.project, pk=d["run"]).first()
        if run is None:
            raise ValidationError({"run": "Choose a succeeded training run of this project to register."})
        v = services.model_version_register(
            run=run, user=self.request.user, description=d["description"], registered_model_name=d["name"]
        )
        messages.success(self.request, f"Registered {v}.")
        return redirect("registry-version", self.project.slug, v.registered_model_id, v.number)


class ModelView(ProjectAccessMixin, TemplateView):
    template_name = "registry/model.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rm = selectors.model_get(self.project, kwargs["pk"])
        ctx.update(
            model=rm,
            versions=rm.versions.select_related("dataset_version", "created_by").prefetch_related("aliases"),
            production=selectors.production_of(rm),
            previous=services.previous_production(rm),
            aliases=rm.aliases.select_related("version"),
            can_rollback=Role.MANAGER in self.roles,
            can_alias=bool({Role.DATA_SCIENTIST, Role.MANAGER} & self.roles),
        )
        return ctx


class VersionView(ProjectAccessMixin, TemplateView):
    template_name = "registry/version.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        v = selectors.version_get(self.project, kwargs["pk"], kwargs["number"])
        production = selectors.production_of(v.registered_model)
        requests = selectors.requests_of(self.project).filter(version=v)
        exports = exports_rows(v)
        ctx.update(
            version=v,
            model=v.registered_model,
            production=production,
            lineage=selectors.lineage(v),
            cm_fig=charts.confusion_figure(v.metrics, f"Confusion matrix of v{v.number}"),
            per_class=sorted((v.metrics.get("per_class") or {}).items()),
            requests=requests,
            open_request=requests.filter(status=RequestStatus.OPEN).first(),
            history=selectors.stage_history(v),
            exceptions=Approval.objects.filter(request__version=v)
            .exclude(gate_exception="")
            .select_related("user", "request"),
            exports=exports,
            card=card_markdown(v, exports),
            can_request=Role.DATA_SCIENTIST in self.roles and v.stage in (Stage.NONE, Stage.STAGING),
            can_stage=bool({Role.DATA_SCIENTIST, Role.MANAGER} & self.roles) and v.stage != Stage.PRODUCTION,
            stages=[s for s in (Stage.NONE, Stage.STAGING, Stage.ARCHIVED) if s != v.stage],
        )
        return ctx


class VersionFormView(FormActionView, VersionView):
    """A form on the version page, answered by its own view (POST only)."""

    http_method_names = ["post"]

    @property
    def version(self):
        return selectors.version_get(self.project, self.kwargs["pk"], self.kwargs["number"])


class StageView(VersionFormView):
    read_roles = write_roles = (Role.DATA_SCIENTIST, Role.MANAGER)
    form_class, form_name = StageForm, "stage_form"

    def form_valid(self, form):
        v, d = self.version, form.cleaned_data
        services.model_version_stage_set(version=v, user=self.request.user, stage=d["stage"], reason=d["reason"])
        messages.success(self.request, f"{v} moved to {d['stage']}.")
        return redirect("registry-version", self.project.slug, v.registered_model_id, v.number)


class AliasView(VersionFormView):
    read_roles = write_roles = (Role.DATA_SCIENTIST, Role.MANAGER)
    form_class, form_name = AliasForm, "alias_form"

    def form_valid(self, form):
        v, name = self.version, form.cleaned_data["name"]
        services.model_alias_set(registered_model=v.registered_model, name=name, version=v, user=self.request.user)
        messages.success(self.request, f"Alias {name} now points at {v}.")
        return redirect("registry-version", self.project.slug, v.registered_model_id, v.number)


class PromoteView(VersionFormView):
    read_roles = write_roles = DS
    form_class, form_name = PromoteForm, "promote_form"

    def form_valid(self, form):
        req = services.promotion_request_create(
            version=self.version, user=self.request.user, note=form.cleaned_data["note"]
        )
        if req.gate_passed:
            messages.success(self.request, f"The gate passed; {req} awaits a manager's approval.")
        else:
            messages.error(
                self.request,
                "The automated gate failed: "
                + " ".join(req.gate["failures"])
                + " The request waits in the managers' inbox as “gate failed”; what next is below.",
            )
        return redirect("registry-request", self.project.slug, req.pk)


class InboxView(ProjectAccessMixin, TemplateView):
    template_name = "registry/inbox.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = []
        for req in selectors.requests_of(self.project, RequestStatus.OPEN):
            rows.append({"req": req, "production": selectors.production_of(req.version.registered_model)})

        ctx.update(
            open=rows,
            decided=selectors.requests_of(self.project).exclude(status=RequestStatus.OPEN)[:30],
            is_manager=Role.MANAGER in self.roles,
            scope_submitted=self.project.scope_status == ScopeStatus.SUBMITTED,
            scope_revision=self.project.scope_revisions.first(),
        )
        return ctx


GATE_ICON = {"pass": "✔", "fail": "✘", "not_measured": "–"}


class RequestView(ProjectAccessMixin, TemplateView):
    template_name = "registry/request.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        req = selectors.request_get(self.project, kwargs["pk"])
        v = req.version
        champ_metrics = (req.gate or {}).get("champion_metrics") or None
        champion = req.champion
        production = selectors.production_of(v.registered_model)
        checks = [{**c, "icon": GATE_ICON.get(c["status"], "?")} for c in (req.gate or {}).get("checks", [])]
        rows = []
        for key, label in charts.SUMMARY + [("roc_auc", "ROC AUC"), ("n", "Test images")]:
            if key in v.metrics:
                a, b = v.metrics.get(key), (champ_metrics or {}).get(key)
                rows.append(
                    {
                        "label": label,
                        "candidate": a,
                        "champion": b,
                        "count": key == "n",
                        "delta": (a - b)
                        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and key != "n"
                        else None,
                    }
                )
        user = self.request.user
        is_manager = Role.MANAGER in self.roles
        gate_failed = not req.gate_passed
        approvals = list(req.approvals.select_related("user"))
        ctx.update(
            gate_failed=gate_failed,
            pending_targets=self.project.targets_pending(),
            next_steps=gate_next_steps(req) if gate_failed else [],
            req=req,
            version=v,
            champion=champion,
            production=production,
            checks=checks,
            rows=rows,
            champ_how=next((c.get("how") for c in checks if c["key"] == "champion"), ""),
            cand_cm=charts.confusion_figure(v.metrics, f"Candidate v{v.number}"),
            champ_cm=charts.confusion_figure(champ_metrics, f"Production v{champion.number}" if champion else ""),
            bars=charts.metrics_bars(
                v.metrics, champ_metrics, f"candidate v{v.number}", f"production v{champion.number}" if champion else ""
            ),
            canary=selectors.canary_comparison(v.registered_model),
            approvals=approvals,
            own=req.requested_by_id == user.pk,
            can_decide=is_manager
            and req.status == RequestStatus.OPEN
            and req.requested_by_id != user.pk
            and not any(a.user_id == user.pk for a in approvals),
            can_withdraw=Role.DATA_SCIENTIST in self.roles and req.status == RequestStatus.OPEN,
            is_manager=is_manager,
        )
        return ctx


def gate_next_steps(req):
    """What the requester can do after a failed gate: (text, url) pairs, most useful first."""
    from django.urls import reverse

    slug, run = req.project.slug, req.version.run
    keys = {c["key"] for c in (req.gate or {}).get("checks", []) if c["status"] == "fail"}
    steps = []
    if keys & {"targets", "champion"}:
        steps.append(
            (
                "Relabel the images this model got wrong: send them to the review queue from the run's "
                "evaluation gallery",
                reverse("training-run-evaluation", args=[slug, run.pk]),
            )
        )
        steps.append(
            (
                "Retrain (rerun the recipe, or change it) and register the new run",
                reverse("training-run", args=[slug, run.pk]),
            )
        )
        steps.append(
            (
                "If the targets are wrong rather than the model, the PM changes them in the scope and a "
                "manager approves that revision; then ask again (the gate runs anew)",
                reverse("project-scope", args=[slug]),
            )
        )
    if "data" in keys:
        steps.append(
            (
                "Fix the dataset version's failing assertions (or have them overridden with a reason)",
                reverse("profiling-index", args=[slug]),
            )
        )
    if "artifacts" in keys:
        steps.append(
            (
                "The artifacts do not match their registered hashes: register the run again",
                reverse("registry-index", args=[slug]),
            )
        )
    steps.append(("Or wait: a manager may approve this request as an exception, with a written reason", ""))
    return steps


class RequestFormView(FormActionView, RequestView):
    """A decision on the request page, answered by its own view (POST only); errors beside its fields."""

    http_method_names = ["post"]
    read_roles = write_roles = MANAGER
    form_name = "decide_form"

    def form_valid(self, form):
        req = selectors.request_get(self.project, self.kwargs["pk"])
        messages.success(self.request, self.decide(req, form.cleaned_data))
        return redirect("registry-request", self.project.slug, req.pk)


class ApproveView(RequestFormView):
    form_class = ApproveForm

    def decide(self, req, d):
        req = services.promotion_request_approve(
            request=req, user=self.request.user, comment=d["comment"], exception_reason=d["exception_reason"]
        )
        if req.status == RequestStatus.APPROVED:
            return f"Approved: {req.version} is in production."
        return f"Approval recorded ({req.approvals.count()} of {req.required_approvals})."


class RejectView(RequestFormView):
    form_class = CommentForm

    def decide(self, req, d):
        services.promotion_request_reject(request=req, user=self.request.user, comment=d["comment"])
        return f"Rejected {req}."


class WithdrawView(RequestFormView):
    read_roles = write_roles = DS
    form_class, form_name = CommentForm, "withdraw_form"

    def decide(self, req, d):
        services.promotion_request_withdraw(request=req, user=self.request.user, reason=d["comment"])
        return f"Withdrew {req}."


class RollbackView(FormActionView, ModelView):
    http_method_names = ["post"]
    read_roles = write_roles = MANAGER
    form_class, form_name = RollbackForm, "rollback_form"

    def form_valid(self, form):
        rm = selectors.model_get(self.project, self.kwargs["pk"])
        v = services.model_version_rollback(
            registered_model=rm, user=self.request.user, reason=form.cleaned_data["reason"]
        )
        messages.success(self.request, f"Rolled back: {v} is in production again.")
        return redirect("registry-model", self.project.slug, rm.pk)


class BundleView(ProjectAccessMixin, View):
    def get(self, request, slug, pk, number):
        return bundle.bundle_response(selectors.version_get(self.project, pk, number))


class SettingsView(ProjectAccessMixin, FormActionView, TemplateView):
    """Members read the rules; managers change them and manage webhooks (whose secrets only they see)."""

    template_name = "registry/settings.html"
    write_roles = MANAGER
    form_class, form_name = SettingsForm, "settings_form"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)

        is_manager = Role.MANAGER in self.roles
        hooks = Webhook.objects.filter(project=self.project).prefetch_related("deliveries") if is_manager else []
        ctx.update(
            rules=gate.settings_for(self.project),
            is_manager=is_manager,
            webhooks=hooks,
            events=services.WEBHOOK_EVENTS,
            metrics=gate.CHAMPION_METRICS,
            settings_form=SettingsForm(),
            webhook_form=WebhookForm(),
            webhook_delete_form=PortalForm(),
        )
        return ctx

    def form_valid(self, form):
        d = form.cleaned_data
        services.registry_settings_update(project=self.project, user=self.request.user, **d)
        messages.success(self.request, "Registry settings saved.")
        return redirect("registry-settings", self.project.slug)


class WebhookCreateView(SettingsView):
    http_method_names = ["post"]
    read_roles = MANAGER
    form_class, form_name = WebhookForm, "webhook_form"

    def form_valid(self, form):
        d = form.cleaned_data
        services.webhook_create(
            project=self.project, user=self.request.user, url=d["url"], events=d["events"], secret=d["secret"]
        )
        messages.success(self.request, "Webhook added.")
        return redirect("registry-settings", self.project.slug)


class WebhookDeleteView(SettingsView):
    http_method_names = ["post"]
    read_roles = MANAGER
    form_class, form_name = PortalForm, "webhook_delete_form"

    def form_valid(self, form):
        hook = get_object_or_404(Webhook, project=self.project, pk=self.kwargs["hook"])
        services.webhook_delete(webhook=hook, user=self.request.user)
        messages.success(self.request, "Webhook removed.")
        return redirect("registry-settings", self.project.slug)


class NotificationsView(LoginRequiredMixin, FormActionView, TemplateView):
    template_name = "registry/notifications.html"
    form_class, form_name = MarkReadForm, "mark_form"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["notes"] = selectors.notifications_of(self.request.user)[:200]
        ctx["unread"] = selectors.unread_count(self.request.user)
        return ctx

    def form_valid(self, form):
        services.notifications_mark_read(user=self.request.user, ids=form.cleaned_data["ids"])
        return redirect("notifications")


class NotificationOpenView(LoginRequiredMixin, View):
    """Following a notification's link marks it read (as an inbox does) and goes where it points:
    one of the portal's own pages, never another site (the inbox otherwise)."""

    def get(self, request, pk):
        note = get_object_or_404(Notification, pk=pk, user=request.user)
        services.notifications_mark_read(user=request.user, ids=[note.pk])
        target = note.url
        if not (target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts=None)):
            target = reverse("notifications")
        return redirect(target)
