"""Training pages: runs list, launch form, live run page, evaluation, compare, sweeps."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.core.forms import FormActionView, PortalForm
from apps.projects.permissions import ProjectAccessMixin

from . import charts, selectors, services
from .forms import RunForm, SweepForm
from .ml.config import ARCHITECTURES, PATCH_RECIPES

DS = (Role.DATA_SCIENTIST,)


def _fig(fig):
    return fig.to_json() if fig is not None else None


def _apply_errors(form, exc):
    for field, msgs in exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]:
        target = field if field in form.fields else None
        for m in msgs:
            form.add_error(target, m if target else (f"{field}: {m}" if field and field != "__all__" else m))


class RunsView(ProjectAccessMixin, TemplateView):
    template_name = "training/runs.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["runs"] = selectors.runs_of(self.project)[:200]
        ctx["sweeps"] = selectors.sweeps_of(self.project)[:50]
        ctx["can_launch"] = Role.DATA_SCIENTIST in self.roles
        return ctx


class RunCreateView(ProjectAccessMixin, View):
    read_roles = write_roles = DS

    def _render(self, request, form, status=200):
        numbers = {str(v.pk): v.number for v in selectors.ready_versions(self.project)}
        return render(
            request,
            "training/run_form.html",
            {
                "project": self.project,
                "roles": self.roles,
                "form": form,
                "architectures": ARCHITECTURES,
                "version_numbers": numbers,
            },
            status=status,
        )

    def get(self, request, slug):
        initial = {}
        src = request.GET.get("from")
        if src and src.isdigit():  # "edit and rerun": start from an earlier run's config
            run = selectors.run_get(self.project, int(src))
            initial = {**run.config, "dataset_version": run.dataset_version_id}
        return self._render(
            request,
            RunForm(versions=selectors.ready_versions(self.project), initial=initial, recipe=services.default_recipe()),
        )

    def post(self, request, slug):
        form = RunForm(request.POST, request.FILES, versions=selectors.ready_versions(self.project))
        if form.is_valid():
            config = form.config()
            recipe = services.default_recipe()
            if config.get("architecture") == recipe.get("architecture"):  # the form started with it
                config["extra"] = {"recipe": services.recipe_reason(recipe)}
            try:
                run = services.training_run_create(
                    project=self.project,
                    user=request.user,
                    dataset_version=form.cleaned_data["dataset_version"],
                    config=config,
                    name=form.cleaned_data["name"],
                    base_model_file=form.cleaned_data.get("base_model"),
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"{run} queued on the {run.queue} queue.")
                return redirect("training-run", self.project.slug, run.pk)
        return self._render(request, form, status=400)


class RunDetailView(ProjectAccessMixin, TemplateView):
    template_name = "training/run.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = selectors.run_get(self.project, kwargs["pk"])
        live = selectors.run_live(run)
        loss, acc = charts.epochs_figures(live["epochs"])
        ctx.update(
            run=run,
            live=live,
            loss_fig=_fig(loss),
            acc_fig=_fig(acc),
            can_act=Role.DATA_SCIENTIST in self.roles,
            can_register=Role.DATA_SCIENTIST in self.roles,
            artifacts=run.artifacts.all(),
        )
        return ctx


class RunFormView(FormActionView, RunDetailView):
    """A button on the run's page (no fields), answered by its own view: POST only, data scientists."""

    http_method_names = ["post"]
    read_roles = write_roles = DS
    form_class, form_name = PortalForm, "run_action_form"


class RunCancelView(RunFormView):
    def form_valid(self, form):
        run = selectors.run_get(self.project, self.kwargs["pk"])
        services.training_run_cancel(run=run, user=self.request.user)
        messages.success(self.request, f"{run}: cancel requested.")
        return redirect("training-run", self.project.slug, run.pk)


class RunRerunView(RunFormView):
    def form_valid(self, form):
        run = services.training_run_rerun(
            run=selectors.run_get(self.project, self.kwargs["pk"]), user=self.request.user
        )
        messages.success(self.request, f"{run} queued with the same config and seed.")
        return redirect("training-run", self.project.slug, run.pk)


class EvaluationView(ProjectAccessMixin, TemplateView):
    template_name = "training/evaluation.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = selectors.run_get(self.project, kwargs["pk"])
        m = run.test_metrics or {}
        ctx.update(
            run=run,
            metrics=m,
            can_review=bool({Role.DATA_SCIENTIST, Role.REVIEWER} & set(self.roles)),
            can_register=Role.DATA_SCIENTIST in self.roles,
            has_heatmaps=any(p.get("heatmap") for p in (run.predictions or [])[:1]),
            heatmap_kind=(
                "The object as the model saw it, its patch scores in red"
                if run.config.get("architecture") in PATCH_RECIPES
                else "Grad-CAM: the image as the model saw it, in red where its last image features drove its answer"
            ),
            localization=m.get("localization"),
        )
        if m:
            roc, pr = charts.curve_figures(m)
            ctx.update(
                cm_fig=_fig(charts.confusion_figure(m)),
                roc_fig=_fig(roc),
                pr_fig=_fig(pr),
                per_class=sorted(m.get("per_class", {}).items()),
            )
        return ctx


class CompareView(ProjectAccessMixin, TemplateView):
    template_name = "training/compare.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ids = [
            int(x)
            for x in self.request.GET.getlist("runs") + self.request.GET.get("ids", "").split(",")
            if str(x).strip().isdigit()
        ]
        runs = selectors.runs_of(self.project)
        runs = runs.filter(pk__in=ids) if ids else runs.filter(status="succeeded")[:30]
        rows = selectors.compare_rows(runs)
        keys = sorted({k for r in rows for k in r["config"] if k != "extra"})
        # The table shows what differs between the runs; what they share goes in one line above it.
        varying = [k for k in keys if len({repr(r["config"].get(k)) for r in rows}) > 1] if len(rows) > 1 else keys
        shared = [(k, rows[0]["config"].get(k)) for k in keys if k not in varying]
        curves = [(f"#{r['id']}", [{"epoch": e.epoch, **e.metrics} for e in r["run"].epochs.all()]) for r in rows]
        loss, acc = charts.overlay_figures(curves)
        ctx.update(
            rows=rows,
            keys=varying,
            shared=shared,
            par_fig=_fig(charts.parallel_figure(rows, keys=varying if len(rows) > 1 else None)),
            loss_fig=_fig(loss),
            acc_fig=_fig(acc),
        )
        return ctx


class SweepCreateView(ProjectAccessMixin, View):
    read_roles = write_roles = DS

    def _render(self, request, form, status=200):
        return render(
            request,
            "training/sweep_form.html",
            {"project": self.project, "roles": self.roles, "form": form},
            status=status,
        )

    def get(self, request, slug):
        return self._render(request, SweepForm(versions=selectors.ready_versions(self.project)))

    def post(self, request, slug):
        form = SweepForm(request.POST, versions=selectors.ready_versions(self.project))
        if form.is_valid():
            d = form.cleaned_data
            try:
                sweep = services.sweep_create(
                    project=self.project,
                    user=request.user,
                    dataset_version=d["dataset_version"],
                    base_config=form.config(),
                    space=d["space"],
                    method=d["method"],
                    max_trials=d["max_trials"],
                    metric=d["metric"],
                    name=d["sweep_name"],
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"{sweep} queued: {sweep.max_trials} trials.")
                return redirect("training-sweep", self.project.slug, sweep.pk)
        return self._render(request, form, status=400)


class SweepDetailView(ProjectAccessMixin, TemplateView):
    template_name = "training/sweep.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        sweep = services.sweep_refresh(sweep_id=selectors.sweep_get(self.project, kwargs["pk"]).pk)
        runs = list(sweep.runs.order_by("trial_index"))
        ctx.update(
            sweep=sweep,
            runs=runs,
            par_fig=_fig(charts.parallel_figure(selectors.compare_rows(runs))),
            can_act=Role.DATA_SCIENTIST in self.roles,
        )
        return ctx


class SweepCancelView(FormActionView, SweepDetailView):
    http_method_names = ["post"]
    read_roles = write_roles = DS
    form_class, form_name = PortalForm, "sweep_action_form"

    def form_valid(self, form):
        sweep = services.sweep_cancel(
            sweep=selectors.sweep_get(self.project, self.kwargs["pk"]), user=self.request.user
        )
        messages.success(self.request, f"{sweep}: cancel requested for its active trials.")
        return redirect("training-sweep", self.project.slug, sweep.pk)
