"""Profiling pages: versions and their gate, a run's dashboard, comparison, assertions."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.core.errors import validation_messages
from apps.core.forms import FormActionView, PortalForm
from apps.core.jobs import JobStatus
from apps.projects.permissions import ProjectAccessMixin

from . import assertions as checks
from . import charts, imagestats, selectors, services
from .compare import compare_profiles
from .forms import AssertionsForm, OverrideForm, StartForm

DS = (Role.DATA_SCIENTIST,)


class IndexView(ProjectAccessMixin, TemplateView):
    template_name = "profiling/index.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = []
        for version, run in selectors.versions_with_runs(self.project):
            rows.append(
                {
                    "version": version,
                    "run": run,
                    "gate": services.gate_check(version) if version.status == "ready" else None,
                }
            )
        ctx["rows"] = rows
        ctx["succeeded"] = selectors.runs_of(self.project).filter(status=JobStatus.SUCCEEDED)
        ctx["history_runs"], ctx["history"] = selectors.assertion_history(self.project)
        ctx["can_run"] = Role.DATA_SCIENTIST in self.roles
        return ctx


class StartView(FormActionView, IndexView):
    http_method_names = ["post"]
    write_roles = DS
    form_class, form_name = StartForm, "start_form"

    def form_valid(self, form):
        version = selectors.version_of(self.project, form.cleaned_data["version"])
        run = services.profile_run_start(version=version, user=self.request.user)
        return redirect("profiling-run", self.project.slug, run.pk)


class RunView(ProjectAccessMixin, TemplateView):
    template_name = "profiling/run.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = selectors.run_of(self.project, kwargs["run_id"])
        ctx["run"], ctx["can_run"] = run, Role.DATA_SCIENTIST in self.roles
        ctx["gate"] = services.gate_check(run.version)
        p = run.profile
        if run.status == JobStatus.SUCCEEDED and p:
            colors = charts.class_colors(self.project, p["classes"])
            figs = {"balance": charts.class_balance(p, colors)}
            ctx["constants"] = []
            for stat in imagestats.NUMERIC_STATS:
                value = charts.constant_value(p, stat)
                if value is None:
                    figs[stat] = charts.stat_histogram(p, stat, charts.by_class(p, colors))
                    figs[f"split-{stat}"] = charts.stat_histogram(p, stat, charts.by_split(p))
                else:  # a flat line tells less than a sentence
                    ctx["constants"].append((imagestats.LABELS[stat], charts.fmt(value)))
            ctx["figs"] = figs
            ctx["stats"] = [(s, imagestats.LABELS[s]) for s in imagestats.NUMERIC_STATS if s in figs]
            ctx["duration"] = (run.finished_at - run.started_at).total_seconds() if run.started_at else None
            ctx["cat_rows"] = [
                (label, p["categorical"].get(key, {}))
                for key, label in [(f"class:{c}", c) for c in p["classes"]] + [(f"split:{s}", s) for s in p["splits"]]
            ]
            ctx["p"] = p
            ctx["class_rows"] = [
                {
                    "name": c,
                    "color": colors[c],
                    "samples": p["samples"].get(c, []),
                    "total": sum(per.get(c, 0) for per in p["counts"].values()),
                    "by_split": [p["counts"].get(s, {}).get(c, 0) for s in p["splits"]],
                }
                for c in p["classes"]
            ]
            one_size = len(p["categorical"].get("all", {}).get("size", {})) <= 1
            ctx["outliers"] = [
                ("Darkest", "brightness", p["outliers"]["darkest"]),
                ("Brightest", "brightness", p["outliers"]["brightest"]),
                ("Blurriest", "variance of Laplacian", p["outliers"]["blurriest"]),
                ("Smallest", "all images are one size" if one_size else "pixels", p["outliers"]["smallest"]),
            ]
            ctx["cats"] = p["categorical"].get("all", {})
            dups = p["duplicates"]
            ctx["dup_groups"] = dups["exact"][:30] + dups["near"][:30]
            ctx["results"] = list(run.results.all())
            ctx["others"] = selectors.runs_of(self.project).filter(status=JobStatus.SUCCEEDED).exclude(pk=run.pk)
        return ctx


class CompareView(ProjectAccessMixin, TemplateView):
    template_name = "profiling/compare.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        runs = selectors.runs_of(self.project).filter(status=JobStatus.SUCCEEDED)
        ctx["runs"] = runs
        a, b = self.request.GET.get("a"), self.request.GET.get("b")
        if not (a and b):
            return ctx
        try:
            ra, rb = selectors.run_of(self.project, int(a)), selectors.run_of(self.project, int(b))
        except ValueError:
            ctx["error"] = "Pick two profiles to compare."
            return ctx
        if not (ra.profile and rb.profile):
            ctx["error"] = "Both profiles must have succeeded."
            return ctx
        la, lb = f"v{ra.version.number} (#{ra.pk})", f"v{rb.version.number} (#{rb.pk})"
        ctx.update(ra=ra, rb=rb, la=la, lb=lb)
        diffs = compare_profiles(ra.profile, rb.profile)
        ctx["diffs"] = diffs
        ctx["changed"] = [d for d in diffs if d["level"] != "same"]
        figs = {"balance": charts.compare_balance(ra.profile, rb.profile, la, lb)}
        for stat in imagestats.NUMERIC_STATS:
            figs[stat] = charts.compare_histogram(stat, ra.profile, rb.profile, la, lb)
        ctx["figs"] = figs
        ctx["stats"] = [(s, imagestats.LABELS[s]) for s in imagestats.NUMERIC_STATS]
        res_a = {(r.check_name, r.title): r for r in ra.results.all()}
        ctx["result_rows"] = [
            {
                "title": r.title,
                "severity": r.severity,
                "a": res_a.get((r.check_name, r.title)),
                "b": r,
                "flipped": (k := res_a.get((r.check_name, r.title))) is not None and k.passed != r.passed,
            }
            for r in rb.results.all()
        ]
        return ctx


class AssertionsView(ProjectAccessMixin, FormActionView, TemplateView):
    """The project's checks as an editable YAML document; "suggest" fills it from a trusted profile."""

    template_name = "profiling/assertions.html"
    write_roles = DS
    form_class, form_name = AssertionsForm, "form"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rules = services.assertion_rules_for(self.project)
        text, suggested_from = checks.to_yaml(checks.to_document(rules)), None
        suggest = self.request.GET.get("suggest")
        if suggest:
            run = selectors.run_of(self.project, int(suggest)) if suggest.isdigit() else None
            if run is not None and run.profile:
                text, suggested_from = checks.to_yaml(checks.to_document(checks.suggest(run.profile))), run
            else:
                messages.error(self.request, "Suggestions need a succeeded profile.")
        ctx.update(
            form=AssertionsForm(initial={"document": text}),
            can_edit=Role.DATA_SCIENTIST in self.roles,
            suggested_from=suggested_from,
            rules=rules,
            catalog=[
                {
                    "name": k,
                    "title": v[1],
                    "params": [
                        {
                            "name": n,
                            "type": p.kind.__name__,
                            "required": p.required,
                            "default": p.default,
                            "choices": ", ".join(p.choices),
                            "help": p.help,
                        }
                        for n, p in v[2].items()
                    ],
                }
                for k, v in checks.CHECKS.items()
            ],
            runs=selectors.runs_of(self.project).filter(status=JobStatus.SUCCEEDED),
        )
        return ctx

    def form_valid(self, form):
        try:
            services.assertions_replace(
                project=self.project, user=self.request.user, document=form.cleaned_data["document"]
            )
        except ValidationError as exc:  # every problem of the document, beside it
            raise ValidationError({"document": validation_messages(exc)}) from exc
        messages.success(self.request, "Assertions saved; they apply from the next profile.")
        return redirect("profiling-assertions", self.project.slug)


class RunFormView(FormActionView, RunView):
    """A form on a profile run's page, answered by its own view (POST only, data scientists)."""

    http_method_names = ["post"]
    write_roles = DS

    @property
    def run(self):
        return selectors.run_of(self.project, self.kwargs["run_id"])


class CancelView(RunFormView):
    form_class, form_name = PortalForm, "cancel_form"

    def form_valid(self, form):
        run = self.run
        services.profile_run_cancel(run=run, user=self.request.user)
        messages.success(self.request, f"Profile #{run.pk} cancelled.")
        return redirect("profiling-run", self.project.slug, run.pk)


class OverrideView(RunFormView):
    """Override the gate of the run's dataset version, with a reason (the gate is shown on the run's page)."""

    form_class, form_name = OverrideForm, "override_form"

    def form_valid(self, form):
        run = self.run
        services.gate_override(version=run.version, user=self.request.user, reason=form.cleaned_data["reason"])
        messages.success(self.request, f"Gate overridden for v{run.version.number}; the reason is in the audit log.")
        return redirect("profiling-run", self.project.slug, run.pk)
