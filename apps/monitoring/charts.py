"""Plotly figures of the monitoring page, built from rollups, drift reports and infrastructure samples.

Figures are written as plain Plotly JSON (``{"data": [...], "layout": {...}}``) rather than through
``plotly.graph_objects``: validating a graph-objects figure with its template costs ~50 ms each, which
a page of sixteen charts cannot afford. The page's template (plotly_white) is sent once
(``template_json``) and applied by monitoring.js."""

import datetime as dt
import functools
import json

from plotly.utils import PlotlyJSONEncoder

from apps.profiling.charts import FALLBACK
from apps.profiling.charts import LAYOUT as PROFILE_LAYOUT

from .models import RuleKind
from .rollups import DRIFT_STATS, percentile
from .selectors import CONFIDENCE_CENTRES

LAYOUT = {k: v for k, v in PROFILE_LAYOUT.items() if k != "template"}


@functools.lru_cache(maxsize=1)
def template_json():
    import plotly.io as pio

    return json.dumps(
        pio.templates[PROFILE_LAYOUT.get("template", "plotly_white")].to_plotly_json(), cls=PlotlyJSONEncoder
    )


class Fig:
    """The few graph-objects calls the page uses, on plain dicts."""

    def __init__(self, layout):
        self.data, self.layout = [], layout

    def add_trace(self, trace):
        self.data.append(trace)

    def _line(self, axis, value, color, dash, text, position):
        shape = {
            "type": "line",
            "xref": "paper" if axis == "y" else "x",
            "yref": "paper" if axis == "x" else "y",
            "line": {"color": color, "dash": dash},
        }
        if axis == "y":
            shape.update(x0=0, x1=1, y0=value, y1=value)
            note = {"xref": "paper", "x": 0, "y": value, "yref": "y", "xanchor": "left", "yanchor": "bottom"}
        else:
            shape.update(y0=0, y1=1, x0=value, x1=value)
            note = {"yref": "paper", "y": 1, "x": value, "xref": "x", "xanchor": "left", "yanchor": "top"}
        self.layout.setdefault("shapes", []).append(shape)
        self.layout.setdefault("annotations", []).append(
            {**note, "text": text, "showarrow": False, "font": {"color": color, "size": 11}}
        )

    def add_hline(self, y, line_dash="dash", line_color="#b42318", annotation_text="", annotation_position=None):
        self._line("y", y, line_color, line_dash, annotation_text, annotation_position)

    def add_vline(self, x, line_dash="dash", line_color="#b42318", annotation_text=""):
        self._line("x", x, line_color, line_dash, annotation_text, None)

    def to_json(self):
        return json.dumps({"data": self.data, "layout": self.layout}, cls=PlotlyJSONEncoder)


class go:  # noqa: N801  (reads like plotly.graph_objects at the call sites)
    @staticmethod
    def Scatter(**kw):  # noqa: N802
        return {"type": "scatter", **kw}

    @staticmethod
    def Bar(**kw):  # noqa: N802
        return {"type": "bar", **kw}


MIN_TO_JUDGE = 30  # fewer samples than this: a drift or live-accuracy figure is "too few to judge"


def time_axis(start, end):
    """A date axis over [start, end] with ticks that suit the span: clock times within two days,
    dates beyond."""
    hours = (end - start).total_seconds() / 3600
    fmt = "%H:%M" if hours <= 6 else "%H:%M<br>%b %d" if hours <= 48 else "%b %d"
    return dict(range=[start, end], type="date", tickformat=fmt, nticks=8)


DAY_AXIS = dict(type="date", tickformat="%b %d", dtick=86_400_000, nticks=10)
COUNT_AXIS = dict(rangemode="tozero")  # counts start at 0: never negative, never a 24–26 zoom on one point


def endpoint_label(name):
    """A route name as people read it: ``api-labeling-next`` → ``labeling next (API)``."""
    name = str(name or "")
    if name in ("unmatched", "unnamed"):
        return "other (no route)"
    api = name.startswith("api-")
    words = name[4:] if api else name
    words = words.replace(":", " ").replace("-", " ").replace("_", " ").strip()
    return f"{words} (API)" if api else words


def _fig(title, **layout):
    return Fig({**json.loads(json.dumps(LAYOUT)), "title": dict(text=title, x=0, font=dict(size=13)), **layout})


def _threshold(fig, y, label):
    if y is not None:
        fig.add_hline(
            y=y, line_dash="dash", line_color="#b42318", annotation_text=label, annotation_position="top left"
        )


def _sorted(buckets):
    xs = sorted(buckets)
    return xs, [buckets[x] for x in xs]


def volume(per, names, start, end):
    fig = _fig("Predictions per bucket", xaxis=time_axis(start, end), yaxis=dict(COUNT_AXIS))
    for i, (vid, buckets) in enumerate(per.items()):
        xs, bs = _sorted(buckets)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[b["count"] for b in bs],
                name=names.get(vid, vid),
                mode="lines+markers",
                line=dict(color=FALLBACK[i % len(FALLBACK)]),
            )
        )
    return fig


def class_distribution(per, start, end, colors=None):
    fig = _fig("Predicted classes over time", barmode="stack", xaxis=time_axis(start, end), yaxis=dict(COUNT_AXIS))
    merged = {}
    for buckets in per.values():
        for x, b in buckets.items():
            m = merged.setdefault(x, {})
            for c, n in b["classes"].items():
                m[c] = m.get(c, 0) + n
    xs = sorted(merged)
    classes = sorted({c for m in merged.values() for c in m})
    for i, c in enumerate(classes):
        fig.add_trace(
            go.Bar(
                x=xs,
                y=[merged[x].get(c, 0) for x in xs],
                name=c,
                marker=dict(color=(colors or {}).get(c) or FALLBACK[i % len(FALLBACK)]),
            )
        )
    return fig


def confidence(totals, names, low):
    fig = _fig(
        "Confidence distribution",
        barmode="group",
        xaxis=dict(title="confidence", range=[0, 1]),
        yaxis=dict(title="share"),
    )
    for i, (vid, t) in enumerate(totals.items()):
        n = sum(t["confidence"]) or 1
        fig.add_trace(
            go.Bar(
                x=CONFIDENCE_CENTRES,
                y=[c / n for c in t["confidence"]],
                name=names.get(vid, vid),
                marker=dict(color=FALLBACK[i % len(FALLBACK)]),
            )
        )
    fig.add_vline(x=low, line_dash="dash", line_color="#a86200", annotation_text=f"low < {low:g}")
    return fig


def low_share(per, names, start, end):
    fig = _fig(
        "Share of low-confidence predictions",
        yaxis=dict(tickformat=".0%", rangemode="nonnegative"),
        xaxis=time_axis(start, end),
    )
    for i, (vid, buckets) in enumerate(per.items()):
        xs, bs = _sorted(buckets)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[b["low"] / b["count"] if b["count"] else None for b in bs],
                name=names.get(vid, vid),
                mode="lines+markers",
                line=dict(color=FALLBACK[i % len(FALLBACK)]),
            )
        )
    return fig


def drift(reports, key, title, threshold, label):
    """One line per statistic (and version) of ``key`` (psi | ks) per day, the rule threshold dashed."""
    fig = _fig(title, yaxis=dict(rangemode="nonnegative"), xaxis=dict(DAY_AXIS))
    versions = sorted({r.model_version_id for r in reports})
    for vi, vid in enumerate(versions):
        rs = [r for r in reports if r.model_version_id == vid]
        name = str(rs[0].model_version)
        for si, stat in enumerate(DRIFT_STATS):
            ys = [r.stats.get(stat, {}).get(key) for r in rs]
            if any(y is not None for y in ys):
                fig.add_trace(
                    go.Scatter(
                        x=[r.day for r in rs],
                        y=ys,
                        mode="lines+markers",
                        name=f"{name} · {stat}",
                        line=dict(color=FALLBACK[si % len(FALLBACK)], dash="solid" if vi == 0 else "dot"),
                    )
                )
    _threshold(fig, threshold, label)
    return fig


def embedding_drift(reports, threshold):
    fig = _fig(
        "Embedding drift (MMD² against the training split)", yaxis=dict(rangemode="nonnegative"), xaxis=dict(DAY_AXIS)
    )
    for i, vid in enumerate(sorted({r.model_version_id for r in reports})):
        rs = [r for r in reports if r.model_version_id == vid and r.embedding_mmd is not None]
        if rs:
            fig.add_trace(
                go.Scatter(
                    x=[r.day for r in rs],
                    y=[r.embedding_mmd for r in rs],
                    mode="lines+markers",
                    name=str(rs[0].model_version),
                    line=dict(color=FALLBACK[i % len(FALLBACK)]),
                )
            )
    _threshold(fig, threshold, "alert threshold")
    return fig


def live_accuracy(days, targets):
    fig = _fig(
        "Live accuracy on labeled production inputs",
        yaxis=dict(range=[0, 1.05], tickformat=".0%"),
        xaxis=dict(DAY_AXIS),
    )
    for i, metric in enumerate(("accuracy", "precision", "recall") if days else ()):
        fig.add_trace(
            go.Scatter(
                x=[d["day"] for d in days],
                y=[d[metric] for d in days],
                name=metric,
                mode="lines+markers",
                line=dict(color=FALLBACK[i]),
            )
        )
    for t in targets:
        if t.metric.lower() in ("accuracy", "precision", "recall"):
            _threshold(fig, t.target, f"target {t.metric} {t.comparator} {t.target:g}")
    return fig


def endpoint_rate(series, minutes_per_bucket, start, end):
    fig = _fig("Requests per minute by endpoint", xaxis=time_axis(start, end), yaxis=dict(COUNT_AXIS))
    for i, (ep, buckets) in enumerate(series.items()):
        xs, bs = _sorted(buckets)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[b["count"] / minutes_per_bucket for b in bs],
                name=endpoint_label(ep),
                mode="lines+markers",
                line=dict(color=FALLBACK[i % len(FALLBACK)]),
            )
        )
    return fig


def endpoint_latency(series, start, end, serving=None):
    """p50/p95/p99 per bucket of the busiest endpoints (+ the serving process's predictions)."""
    fig = _fig("Latency p50 / p95 / p99 (ms)", yaxis=dict(type="log"), xaxis=time_axis(start, end))
    items = list(series.items())
    if serving:
        items = [("serving (predictions)", serving)] + items
    for i, (ep, buckets) in enumerate(items[:5]):
        xs, bs = _sorted(buckets)
        for q, dash in ((0.5, "dot"), (0.95, "solid"), (0.99, "dash")):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[percentile(b.get("hist") or b.get("lat"), q) for b in bs],
                    name=f"{endpoint_label(ep) if ep != 'serving (predictions)' else ep} p{int(q * 100)}",
                    mode="lines",
                    line=dict(color=FALLBACK[i % len(FALLBACK)], dash=dash),
                )
            )
    return fig


def endpoint_errors(series, start, end, threshold=None):
    fig = _fig(
        "Error rate by endpoint", yaxis=dict(tickformat=".0%", rangemode="nonnegative"), xaxis=time_axis(start, end)
    )
    for i, (ep, buckets) in enumerate(series.items()):
        xs, bs = _sorted(buckets)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[b["errors"] / b["count"] if b["count"] else 0 for b in bs],
                name=endpoint_label(ep),
                mode="lines",
                line=dict(color=FALLBACK[i % len(FALLBACK)]),
            )
        )
    _threshold(fig, threshold, "alert threshold")
    return fig


def infra(samples, start, end):
    xs = [s.taken_at for s in samples]
    queues = sorted({q for s in samples for q in s.queues})
    q = _fig("Celery queue depths", xaxis=time_axis(start, end), yaxis=dict(COUNT_AXIS))
    for i, name in enumerate(queues):
        q.add_trace(
            go.Scatter(
                x=xs,
                y=[s.queues.get(name, 0) for s in samples],
                name=name,
                mode="lines",
                line=dict(color=FALLBACK[i % len(FALLBACK)]),
            )
        )
    w = _fig("Live workers", xaxis=time_axis(start, end), yaxis=dict(rangemode="nonnegative", dtick=1))
    w.add_trace(
        go.Scatter(
            x=xs,
            y=[s.live_workers for s in samples],
            name="live workers",
            mode="lines",
            line=dict(shape="hv", color=FALLBACK[0]),
        )
    )
    hb = _fig("Seconds since each worker's heartbeat", xaxis=time_axis(start, end), yaxis=dict(rangemode="nonnegative"))
    hosts = sorted({w["hostname"] for s in samples for w in s.workers})
    for i, host in enumerate(hosts):
        ys = []
        for s in samples:
            seen = next((x["last_seen"] for x in s.workers if x["hostname"] == host), None)
            ys.append((s.taken_at - dt.datetime.fromisoformat(seen)).total_seconds() if seen else None)
        hb.add_trace(go.Scatter(x=xs, y=ys, name=host, mode="lines", line=dict(color=FALLBACK[i % len(FALLBACK)])))
    j = _fig("Running and failed jobs", xaxis=time_axis(start, end), yaxis=dict(COUNT_AXIS))
    kinds = sorted({k for s in samples for k in s.jobs})
    for i, k in enumerate(kinds):
        for status, dash in (("running", "solid"), ("failed", "dot")):
            j.add_trace(
                go.Scatter(
                    x=xs,
                    y=[s.jobs.get(k, {}).get(status, 0) for s in samples],
                    name=f"{k} {status}",
                    mode="lines",
                    line=dict(color=FALLBACK[i % len(FALLBACK)], dash=dash),
                )
            )
    st = _fig("Storage used (MB)", xaxis=time_axis(start, end), yaxis=dict(COUNT_AXIS))
    for i, role in enumerate(("images", "thumbnails", "artifacts")):
        st.add_trace(
            go.Scatter(
                x=xs,
                y=[(s.storage.get(role) or 0) / 1e6 for s in samples],
                name=role,
                stackgroup="one",
                line=dict(color=FALLBACK[i]),
            )
        )
    h = _fig("Health (1 = ok) and check time", xaxis=time_axis(start, end), yaxis=dict(range=[0, 1.1], dtick=1))
    for i, name in enumerate(("database", "broker")):
        h.add_trace(
            go.Scatter(
                x=xs,
                y=[1 if s.health.get(name, {}).get("ok") else 0 for s in samples],
                name=f"{name} ok",
                mode="lines",
                line=dict(shape="hv", color=FALLBACK[i]),
            )
        )
    return {"queues": q, "workers": w, "heartbeats": hb, "jobs": j, "storage": st, "health": h}


def rule_threshold(rules, kind):
    for r in rules:
        if r.kind == kind and r.enabled:
            return r.threshold
    return None


KIND_LABELS = dict(RuleKind.choices)
