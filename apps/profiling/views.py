"""Profiling pages: versions and their gate, a run's dashboard, comparison, assertions."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.core.errors import validation_messages
from apps.core.jobs import JobStatus
from apps.projects.permissions import ProjectAccessMixin

from . import assertions as checks
from . import charts, imagestats, selectors, services
from .compare import compare_profiles

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


class StartView(ProjectAccessMixin, View):
    write_roles = DS

    def post(self, request, slug):
        try:
            version = selectors.version_of(self.project, int(request.POST.get("version", "0")))
        except ValueError:
            messages.error(request, "Choose a dataset version to profile.")
            return redirect("profiling-index", slug)
        try:
            run = services.profile_run_start(version=version, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(validation_messages(exc)))
            return redirect("profiling-index", slug)
        return redirect("profiling-run", slug, run.pk)


class CancelView(ProjectAccessMixin, View):
    write_roles = DS

    def post(self, request, slug, run_id):
        run = selectors.run_of(self.project, run_id)
        try:
            services.profile_run_cancel(run=run, user=request.user)
            messages.success(request, f"Profile #{run.pk} cancelled.")
        except ValidationError as exc:
            messages.error(request, " ".join(validation_messages(exc)))
        return redirect("profiling-run", slug, run.pk)


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


class AssertionsView(ProjectAccessMixin, View):
    """The project's checks as an editable YAML document; "suggest" fills it from a trusted profile."""

    write_roles = DS

    def _render(self, request, text, errors=(), status=200, suggested_from=None):
        from django.shortcuts import render

        return render(
            request,
            "profiling/assertions.html",
            {
                "project": self.project,
                "roles": self.roles,
                "text": text,
                "errors": list(errors),
                "can_edit": Role.DATA_SCIENTIST in self.roles,
                "suggested_from": suggested_from,
                "rules": services.assertion_rules_for(self.project),
                "catalog": [
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
                "runs": selectors.runs_of(self.project).filter(status=JobStatus.SUCCEEDED),
            },
            status=status,
        )

    def get(self, request, slug):
        rules = services.assertion_rules_for(self.project)
        suggest = request.GET.get("suggest")
        if suggest:
            try:
                run = selectors.run_of(self.project, int(suggest))
            except ValueError:
                run = None
            if run is not None and run.profile:
                return self._render(
                    request, checks.to_yaml(checks.to_document(checks.suggest(run.profile))), suggested_from=run
                )
            messages.error(request, "Suggestions need a succeeded profile.")
        return self._render(request, checks.to_yaml(checks.to_document(rules)))

    def post(self, request, slug):
        text = request.POST.get("document", "")
        try:
            services.assertions_replace(project=self.project, user=request.user, document=text)
        except ValidationError as exc:
            errs = validation_messages(exc)
            return self._render(request, text, errs, status=400)
        messages.success(request, "Assertions saved; they apply from the next profile.")
        return redirect("profiling-assertions", slug)


class OverrideView(ProjectAccessMixin, View):
    write_roles = DS

    def post(self, request, slug, number):
        version = selectors.version_of(self.project, number)
        try:
            services.gate_override(version=version, user=request.user, reason=request.POST.get("reason", ""))
            messages.success(request, f"Gate overridden for v{version.number}; the reason is in the audit log.")
        except ValidationError as exc:
            messages.error(request, " ".join(validation_messages(exc)))
        nxt = request.POST.get("next", "")
        return redirect(nxt if nxt.startswith(f"/p/{slug}/") else f"/p/{slug}/profile/")
