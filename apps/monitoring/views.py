"""Monitoring pages: the dashboard (model, drift, live accuracy, infrastructure, alerts), the
alert rules, one incident with its timeline."""

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.core.forms import FormActionView, PortalForm
from apps.profiling.charts import class_colors
from apps.projects.permissions import ProjectAccessMixin

from . import charts, selectors, services
from .forms import AlertNoteForm, RuleForm
from .models import IncidentEvent, Retrain, RuleKind
from .portfolio import portfolio
from .rollups import add_hist, low_confidence_below, percentile


def _json(fig):
    return fig.to_json()


def dashboard_context(project, range_name=None, version_id=None):
    name, start, end, bucket = selectors.time_range(range_name)
    versions = list(selectors.versions_of(project))
    names = {v.pk: f"{v.registered_model.name} v{v.number}" for v in versions}
    if version_id not in names:
        version_id = None
    rules = list(selectors.rules_of(project))
    targets = project.approved_targets or []
    per, totals = selectors.prediction_series(project, start, end, bucket, version_id)
    reports = selectors.drift_reports(project, start, version_id)
    live = selectors.live_scores(project, start=start, end=end, version_id=version_id)
    series = selectors.endpoint_series(start, end, bucket)
    serving = {}
    for buckets in per.values():
        for x, b in buckets.items():
            s = serving.setdefault(x, {"count": 0, "errors": 0, "hist": []})
            s["count"] += b["count"]
            s["hist"] = add_hist(s["hist"], b["lat"])
    samples = selectors.infra_samples(start, end)
    minutes = bucket.total_seconds() / 60
    figs = {
        "volume": charts.volume(per, names, start, end),
        "classes": charts.class_distribution(
            per,
            start,
            end,
            colors=class_colors(
                project, sorted({c for buckets in per.values() for b in buckets.values() for c in b["classes"]})
            ),
        ),
        "confidence": charts.confidence(totals, names, low_confidence_below()),
        "low_share": charts.low_share(per, names, start, end),
        "psi": charts.drift(
            reports,
            "psi",
            "Input drift: PSI per statistic and day",
            charts.rule_threshold(rules, RuleKind.INPUT_DRIFT) or services.DEFAULTS[RuleKind.INPUT_DRIFT],
            "PSI threshold",
        ),
        "ks": charts.drift(
            reports,
            "ks",
            "Input drift: KS distance per statistic and day",
            charts.rule_threshold(rules, RuleKind.INPUT_DRIFT_KS) or services.DEFAULTS[RuleKind.INPUT_DRIFT_KS],
            "KS threshold",
        ),
        "embedding": charts.embedding_drift(
            reports,
            charts.rule_threshold(rules, RuleKind.EMBEDDING_DRIFT) or services.DEFAULTS[RuleKind.EMBEDDING_DRIFT],
        ),
        "live": charts.live_accuracy(live["days"], targets),
        "rate": charts.endpoint_rate(series, minutes, start, end),
        "latency": charts.endpoint_latency(series, start, end, serving=serving),
        "errors": charts.endpoint_errors(series, start, end, charts.rule_threshold(rules, RuleKind.ERROR_RATE)),
        **{f"infra_{k}": v for k, v in charts.infra(samples, start, end).items()},
    }
    summary = []
    for vid, t in totals.items():
        p95 = percentile(t["lat"], 0.95)
        summary.append(
            {
                "name": names.get(vid, vid),
                "count": t["count"],
                "low_share": t["low"] / t["count"] if t["count"] else None,
                "p95": p95,
                "p95_missed": _missed(targets, {"p95_latency_ms": p95}, latency=True),
                "classes": dict(sorted(t["classes"].items())),
            }
        )
    endpoints = [{**e, "label": charts.endpoint_label(e["endpoint"])} for e in selectors.endpoint_table(start, end)]
    latest = reports[-1] if reports else None
    return {
        "range": name,
        "ranges": list(selectors.RANGES),
        "start": start,
        "end": end,
        "versions": versions,
        "version_id": version_id,
        "rules": rules,
        "figures": {k: _json(f) for k, f in figs.items()},
        "template_json": charts.template_json(),
        "summary": summary,
        "live": live,
        "targets": targets,
        "min_to_judge": charts.MIN_TO_JUDGE,
        "live_too_few": live["overall"]["n"] < charts.MIN_TO_JUDGE,
        "live_missed": (_missed(targets, live["overall"]) if live["overall"]["n"] >= charts.MIN_TO_JUDGE else []),
        "serving": _serving(totals),
        "endpoints": endpoints,
        "infra": selectors.latest_infra(),
        "latest_drift": latest,
        "drift_too_few": latest is not None and (latest.n or 0) < charts.MIN_TO_JUDGE,
        "log_losses": selectors.log_losses(project, start),
        "open_alerts": list(selectors.alerts_of(project, "open")[:20]),
        "recent_alerts": list(selectors.alerts_of(project).exclude(status__in=("firing", "acknowledged"))[:10]),
        "retrains": list(
            Retrain.objects.filter(project=project).select_related("dataset_version", "run").order_by("-id")[:5]
        ),
    }


def _missed(targets, values, latency=False):
    """The targets (as text) that ``values`` fail: accuracy/precision/recall from live labels, or a p95
    latency target from the serving rollups (``latency=True``). A value nothing measured is skipped."""
    from apps.training.ml.evaluate import metric_lookup, metric_needs_latency

    out = []
    for t in targets:
        if metric_needs_latency(t.metric) != latency:
            continue
        value = metric_lookup(values, t.metric)
        if value is not None and not t.met_by(value):
            out.append(f"{t} (now {value:.3g})")
    return out


def _serving(totals):
    """The serving process's numbers from the totals already read (no second pass over the rollups)."""
    hist, n = [], 0
    for t in totals.values():
        n += t["count"]
        hist = add_hist(hist, t["lat"])
    return {"count": n, "p50": percentile(hist, 0.5), "p95": percentile(hist, 0.95), "p99": percentile(hist, 0.99)}


class DashboardView(ProjectAccessMixin, TemplateView):
    template_name = "monitoring/dashboard.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        try:
            version_id = int(self.request.GET.get("version") or 0) or None
        except ValueError:
            version_id = None
        ctx.update(dashboard_context(self.project, self.request.GET.get("range"), version_id))
        ctx["can_edit_rules"] = bool(self.roles & {Role.PM, Role.DATA_SCIENTIST})
        ctx["is_manager"] = Role.MANAGER in self.roles
        return ctx


class RulesView(ProjectAccessMixin, FormActionView, TemplateView):
    """Members read the rules; PMs and data scientists add one here (and use the views below)."""

    template_name = "monitoring/rules.html"
    write_roles = services.RULE_EDITORS
    form_class = RuleForm

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["rules"] = selectors.rules_of(self.project)
        ctx["form"] = RuleForm()
        ctx["rule_action_form"] = PortalForm()
        ctx["can_edit"] = bool(self.roles & set(services.RULE_EDITORS))
        ctx["kinds"] = RuleKind.choices
        ctx["defaults"] = {k.value: v for k, v in services.DEFAULTS.items()}
        return ctx

    def form_valid(self, form):
        services.alert_rule_create(project=self.project, user=self.request.user, data=form.rule_data())
        messages.success(self.request, "Rule added.")
        return redirect("monitoring-rules", self.project.slug)


class RuleActionView(RulesView):
    """A button on the rules page (no fields): its own view, POST only."""

    http_method_names = ["post"]
    form_class, form_name = PortalForm, "rule_action_form"

    def rule(self):
        return get_object_or_404(selectors.rules_of(self.project), pk=self.kwargs["rule"])


class RuleDefaultsView(RuleActionView):
    def form_valid(self, form):
        made = services.alert_rules_defaults(project=self.project, user=self.request.user)
        messages.success(self.request, f"{len(made)} rule(s) added.")
        return redirect("monitoring-rules", self.project.slug)


class RuleToggleView(RuleActionView):
    def form_valid(self, form):
        rule = self.rule()
        services.alert_rule_update(rule=rule, user=self.request.user, data={"enabled": not rule.enabled})
        messages.success(self.request, f"Rule {rule.name} {'disabled' if rule.enabled else 'enabled'}.")
        return redirect("monitoring-rules", self.project.slug)


class RuleDeleteView(RuleActionView):
    def form_valid(self, form):
        rule = self.rule()
        services.alert_rule_delete(rule=rule, user=self.request.user)
        messages.success(self.request, f"Rule {rule.name} deleted.")
        return redirect("monitoring-rules", self.project.slug)


class AlertView(ProjectAccessMixin, TemplateView):
    template_name = "monitoring/alert.html"

    def get_alert(self):
        return get_object_or_404(selectors.alerts_of(self.project), pk=self.kwargs["alert_id"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        alert = self.get_alert()
        ctx["alert"] = alert
        ctx["events"] = IncidentEvent.objects.filter(alert=alert).select_related("actor")
        ctx["is_manager"] = Role.MANAGER in self.roles
        ctx["retrains"] = Retrain.objects.filter(alert=alert).select_related("dataset_version", "run")
        ctx["note_form"] = AlertNoteForm()
        return ctx


class AlertActionView(FormActionView, AlertView):
    """Acknowledge or resolve (managers): one view each, POST only; errors beside the note."""

    http_method_names = ["post"]
    read_roles = write_roles = (Role.MANAGER,)
    form_class, form_name = AlertNoteForm, "note_form"

    def form_valid(self, form):
        alert = self.get_alert()
        self.act(alert=alert, user=self.request.user, note=form.cleaned_data["note"])
        return redirect("monitoring-alert", self.project.slug, alert.pk)


class AlertAcknowledgeView(AlertActionView):
    act = staticmethod(services.alert_acknowledge)


class AlertResolveView(AlertActionView):
    act = staticmethod(services.alert_resolve)


class PortfolioView(LoginRequiredMixin, TemplateView):
    """Every project of the user on one page: stage, targets against production, the open promotion
    requests across projects (the managers' inbox), open alerts."""

    template_name = "monitoring/portfolio.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(portfolio(self.request.user))
        return ctx
