"""Plotly figures built in Python (rendered by the vendored plotly.js)."""

import plotly.graph_objects as go


def _layout(fig, title, **kw):
    kw.setdefault("height", 320)
    fig.update_layout(title=title, margin=dict(l=50, r=20, t=40, b=40), template="plotly_white", **kw)
    return fig


def epochs_figures(epochs):
    """Two figures: losses and accuracies per epoch (any other metric goes with its family)."""
    keys = sorted({k for e in epochs for k in e if k not in ("epoch", "seconds", "learning_rate")})
    loss, acc = go.Figure(), go.Figure()
    for k in keys:
        fig = loss if "loss" in k else acc
        fig.add_trace(
            go.Scatter(
                x=[e["epoch"] for e in epochs],
                y=[e.get(k) for e in epochs],
                mode="lines+markers",
                name=k,
                line=dict(dash="dot" if k.startswith("val_") else "solid"),
            )
        )
    return (
        _layout(loss, "Loss", xaxis_title="epoch"),
        _layout(acc, "Accuracy", xaxis_title="epoch", yaxis=dict(range=[0, 1.02])),
    )


def confusion_figure(metrics):
    classes, cm = metrics["classes"], metrics["confusion_matrix"]
    fig = go.Figure(
        go.Heatmap(
            z=cm,
            x=classes,
            y=classes,
            colorscale="Blues",
            text=cm,
            texttemplate="%{text}",
            hovertemplate="true %{y} → predicted %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="true")
    fig.update_xaxes(title="predicted")
    return _layout(fig, "Confusion matrix (click a cell to see its images)", height=360)


def curve_figures(metrics):
    curves = metrics.get("curves")
    if not curves:
        return None, None
    pos = curves["positive_class"]
    roc = go.Figure(
        [
            go.Scatter(
                x=curves["roc"]["fpr"], y=curves["roc"]["tpr"], mode="lines", name=f"AUC {curves['roc_auc']:.3f}"
            ),
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#aaa"), name="chance"),
        ]
    )
    _layout(roc, f"ROC ({pos} positive)", xaxis_title="false positive rate", yaxis_title="true positive rate")
    pr = go.Figure(
        go.Scatter(
            x=curves["pr"]["recall"],
            y=curves["pr"]["precision"],
            mode="lines",
            name=f"AP {curves['average_precision']:.3f}",
        )
    )
    _layout(
        pr,
        f"Precision-recall ({pos} positive)",
        xaxis_title="recall",
        yaxis_title="precision",
        yaxis=dict(range=[0, 1.02]),
    )
    return roc, pr


NUMERIC_KEYS = ["learning_rate", "batch_size", "epochs", "image_size", "dropout", "seed"]


def parallel_figure(rows, keys=None):
    """Parallel coordinates over hyperparameters and metrics, one line per run. With ``keys`` (the
    hyperparameters that differ between the runs) only those get an axis: a flat axis says nothing."""
    if not rows:
        return None
    dims = []
    for k in NUMERIC_KEYS:
        if keys is not None and k not in keys:
            continue
        vals = [r["config"].get(k) for r in rows]
        if all(isinstance(v, (int, float)) for v in vals):
            dims.append(dict(label=k, values=vals))
    for k in ("architecture", "optimizer", "augmentation"):
        if keys is not None and k not in keys:
            continue
        vals = [r["config"].get(k, "") for r in rows]
        cats = sorted(set(vals))
        dims.append(dict(label=k, values=[cats.index(v) for v in vals], tickvals=list(range(len(cats))), ticktext=cats))
    for k in ("val_accuracy", "accuracy", "macro_f1"):
        vals = [r[k] if r[k] is not None else 0 for r in rows]
        dims.append(dict(label=("test " if k != "val_accuracy" else "best ") + k, values=vals, range=[0, 1]))
    return _parallel_lines(dims, rows, "Runs: hyperparameters → metrics (colour: test accuracy)")


def _parallel_lines(dims, rows, title):
    """Parallel coordinates drawn with plain scatter lines (one polyline per run across the axes), so
    the pages need only plotly's cartesian bundle, not the WebGL parcoords trace. Each axis is scaled
    to its own range (log for a learning rate spanning decades); its ends and categories are labelled."""
    import math

    from plotly.colors import sample_colorscale

    def scale(dim):
        vals = dim["values"]
        if "ticktext" in dim:
            n = max(len(dim["ticktext"]) - 1, 1)
            return (lambda v: v / n), [(i / n, t) for i, t in enumerate(dim["ticktext"])]
        lo, hi = dim.get("range", (min(vals), max(vals)))
        use_log = lo > 0 and hi / lo >= 10
        f = (lambda v: math.log10(v)) if use_log else (lambda v: v)
        a, b = f(lo), f(hi)
        span = (b - a) or 1.0
        return (lambda v: (f(v) - a) / span if b != a else 0.5), [(0.0, f"{lo:g}"), (1.0, f"{hi:g}")]

    scales = [scale(d) for d in dims]
    fig = go.Figure()
    for r_i, row in enumerate(rows):
        acc = row["accuracy"] or 0
        ys = [s(d["values"][r_i]) for (s, _), d in zip(scales, dims)]
        text = [
            f"{d['label']}: {d['ticktext'][d['values'][r_i]] if 'ticktext' in d else d['values'][r_i]}" for d in dims
        ]
        fig.add_trace(
            go.Scatter(
                x=list(range(len(dims))),
                y=ys,
                mode="lines+markers",
                name=f"#{row['id']}",
                text=text,
                hovertemplate=f"run #{row['id']}<br>%{{text}}<extra></extra>",
                line=dict(color=sample_colorscale("Viridis", [min(max(acc, 0), 1)])[0], width=2),
                showlegend=False,
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker=dict(
                color=[0],
                cmin=0,
                cmax=1,
                colorscale="Viridis",
                showscale=True,
                colorbar=dict(title="test acc", thickness=12),
            ),
        )
    )
    for i, (_, ticks) in enumerate(scales):
        fig.add_shape(type="line", x0=i, x1=i, y0=0, y1=1, line=dict(color="#8a93a3", width=1))
        for y, label in ticks:
            fig.add_annotation(
                x=i,
                y=y,
                text=str(label),
                showarrow=False,
                xanchor="left",
                xshift=4,
                font=dict(size=10, color="#5b6475"),
            )
    fig = _layout(fig, title, height=440)
    fig.update_layout(
        margin=dict(l=40, r=40, t=60, b=40),
        xaxis=dict(
            tickvals=list(range(len(dims))),
            ticktext=[d["label"] for d in dims],
            showgrid=False,
            zeroline=False,
            range=[-0.3, len(dims) - 0.5],
        ),
        yaxis=dict(visible=False, range=[-0.08, 1.08]),
    )
    return fig


def overlay_figures(runs_epochs):
    """The runs' training curves on shared axes: validation loss and validation accuracy per epoch,
    one colour per run (training curves dotted). ``runs_epochs``: [(label, [epoch dicts])]."""
    palette = ["#2456c7", "#b42318", "#1a7f4b", "#a86200", "#6b3fa0", "#0f766e", "#9d174d", "#4d7c0f"]
    loss, acc = go.Figure(), go.Figure()
    for i, (label, epochs) in enumerate(runs_epochs):
        color = palette[i % len(palette)]
        xs = [e["epoch"] for e in epochs]
        for fig, key in ((loss, "loss"), (acc, "accuracy")):
            for prefix, dash in (("val_", "solid"), ("", "dot")):
                ys = [e.get(prefix + key) for e in epochs]
                if any(y is not None for y in ys):
                    fig.add_trace(
                        go.Scatter(
                            x=xs,
                            y=ys,
                            mode="lines",
                            name=f"{label} {prefix}{key}",
                            line=dict(color=color, dash=dash),
                            legendgroup=label,
                        )
                    )
    return (
        _layout(loss, "Loss per epoch (solid: validation, dotted: training)", xaxis_title="epoch"),
        _layout(
            acc,
            "Accuracy per epoch (solid: validation, dotted: training)",
            xaxis_title="epoch",
            yaxis=dict(range=[0, 1.02]),
        ),
    )
