"""Plotly figures of a stored profile, built in Python and rendered by the vendored plotly.js."""

import math

import plotly.graph_objects as go

from apps.core.colors import class_palette
from apps.labeling.models import LabelClass

from . import imagestats

SPLIT_COLORS = {"train": "#2456c7", "val": "#a86200", "test": "#6b3fa0"}
FALLBACK = ["#1a7f4b", "#b42318", "#2456c7", "#a86200", "#6b3fa0", "#0f766e", "#9d174d", "#4d7c0f"]
LAYOUT = dict(
    margin=dict(l=48, r=12, t=36, b=40),
    height=260,
    template="plotly_white",
    font=dict(family="system-ui, sans-serif", size=12),
    legend=dict(orientation="h", y=-0.25),
)


def class_colors(project, classes):

    known = dict(LabelClass.objects.filter(project=project).values_list("name", "color"))
    fallback = class_palette([c for c in classes if c not in known])
    return {c: known.get(c) or fallback[c] for c in classes}


def fmt(v):
    """A number short enough for a legend: 1,024 / 183 / 5.91 / 0.0123."""
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def constant_value(profile, stat):
    """The one value every readable image has for ``stat`` (e.g. all 1024 px wide), else None."""
    s = profile["groups"].get("all", {}).get(stat)
    if s and s["n"] and s["min"] == s["max"]:
        return s["min"]
    return None


def _centers(edges, log):
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        out.append(math.sqrt(a * b) if log and a > 0 else (b / 2 if log else (a + b) / 2))
    return out


def class_balance(profile, colors):
    fig = go.Figure()
    classes = profile.get("classes", [])
    for split in profile.get("splits", []):
        per = profile["counts"].get(split, {})
        fig.add_bar(
            name=split,
            x=classes,
            y=[per.get(c, 0) for c in classes],
            marker_color=SPLIT_COLORS.get(split),
            text=[per.get(c, 0) for c in classes],
            textposition="auto",
        )
    fig.update_layout(
        **{**LAYOUT, "height": 300}, barmode="stack", title="Images per class and split", yaxis_title="images"
    )
    return fig.to_json()


def by_class(profile, colors):
    return [(f"class:{c}", c, colors.get(c)) for c in profile.get("classes", [])]


def by_split(profile):
    return [(f"split:{s}", s, SPLIT_COLORS.get(s)) for s in profile.get("splits", [])]


def stat_histogram(profile, stat, series, title=None):
    """One statistic's fixed-bin histogram per group (``series``: [(group key, name, colour)]), as
    shares of each group so that groups of different sizes compare; a step line per group."""
    edges = profile["bins"][stat]
    log = stat in profile.get("log_scale", [])
    x = _centers(edges, log)
    fig = go.Figure()
    nonzero = []
    for key, name, color in series:
        s = profile["groups"].get(key, {}).get(stat)
        if not s or not s["n"]:
            continue
        ys = [h / s["n"] for h in s["hist"]]
        nonzero += [i for i, h in enumerate(s["hist"]) if h]
        fig.add_scatter(
            x=x,
            y=ys,
            name=f"{name} (mean {fmt(s['mean'])})",
            mode="lines",
            line_shape="hvh",
            line=dict(color=color, width=2),
            fill="tozeroy",
            opacity=0.5,
            hovertemplate=f"{name}<br>%{{x:.3g}}: %{{y:.1%}}<extra></extra>",
        )
    if nonzero:  # zoom on the occupied bins (edges are fixed and wide)
        lo, hi = max(0, min(nonzero) - 1), min(len(edges) - 2, max(nonzero) + 1)
        rng = [edges[lo], edges[hi + 1]]
        if log:
            rng = [math.log10(max(rng[0], 1e-3)), math.log10(rng[1])]
        fig.update_xaxes(range=rng)
    fig.update_layout(**LAYOUT, title=title or imagestats.LABELS[stat], yaxis_tickformat=".0%")
    fig.update_xaxes(type="log" if log else "linear", **({"dtick": 1} if log else {}))
    return fig.to_json()


def compare_histogram(stat, a, b, label_a, label_b):
    edges = a["bins"][stat]
    log = stat in a.get("log_scale", [])
    x = _centers(edges, log)
    fig = go.Figure()
    nonzero = []
    for prof, name, color in ((a, label_a, "#8a93a3"), (b, label_b, "#2456c7")):
        s = prof["groups"].get("all", {}).get(stat)
        if not s or not s["n"]:
            continue
        nonzero += [i for i, h in enumerate(s["hist"]) if h]
        fig.add_scatter(
            x=x,
            y=[h / s["n"] for h in s["hist"]],
            name=name,
            mode="lines",
            line_shape="hvh",
            line=dict(color=color, width=2),
            fill="tozeroy",
            opacity=0.5,
        )
    if nonzero:
        lo, hi = max(0, min(nonzero) - 1), min(len(edges) - 2, max(nonzero) + 1)
        rng = [edges[lo], edges[hi + 1]]
        if log:
            rng = [math.log10(max(rng[0], 1e-3)), math.log10(rng[1])]
        fig.update_xaxes(range=rng)
    fig.update_layout(**LAYOUT, title=imagestats.LABELS[stat], yaxis_tickformat=".0%")
    fig.update_xaxes(type="log" if log else "linear", **({"dtick": 1} if log else {}))
    return fig.to_json()


def compare_balance(a, b, label_a, label_b):
    classes = sorted(set(a.get("classes", [])) | set(b.get("classes", [])))
    fig = go.Figure()
    for prof, name, color in ((a, label_a, "#8a93a3"), (b, label_b, "#2456c7")):
        tot = {c: sum(per.get(c, 0) for per in prof.get("counts", {}).values()) for c in classes}
        fig.add_bar(
            name=name,
            x=classes,
            y=[tot[c] for c in classes],
            marker_color=color,
            text=[tot[c] for c in classes],
            textposition="auto",
        )
    fig.update_layout(**{**LAYOUT, "height": 300}, barmode="group", title="Images per class")
    return fig.to_json()
