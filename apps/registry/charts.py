"""Plotly figures for the registry pages (rendered by the vendored plotly.js)."""

import plotly.graph_objects as go

SUMMARY = [
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro F1"),
    ("macro_precision", "Macro precision"),
    ("macro_recall", "Macro recall"),
]


def _layout(fig, title, height=320):
    fig.update_layout(
        title=title, height=height, margin=dict(l=60, r=20, t=50, b=50), template="plotly_white", font=dict(size=12)
    )
    return fig


def confusion_figure(metrics, title):
    if not metrics or "confusion_matrix" not in metrics:
        return None
    classes, cm = metrics["classes"], metrics["confusion_matrix"]
    fig = go.Figure(
        go.Heatmap(
            z=cm,
            x=classes,
            y=classes,
            colorscale="Blues",
            text=cm,
            texttemplate="%{text}",
            showscale=False,
            hovertemplate="true %{y} → predicted %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="true")
    fig.update_xaxes(title="predicted")
    return _layout(fig, title).to_json()


def metrics_bars(candidate, champion, cand_name, champ_name):
    """Grouped bars: the candidate beside production on the same test split."""
    keys = [(k, label) for k, label in SUMMARY if k in (candidate or {})]
    if not keys:
        return None
    fig = go.Figure()
    fig.add_bar(
        name=cand_name,
        x=[label for _, label in keys],
        y=[candidate.get(k) for k, _ in keys],
        marker_color="#2456c7",
        texttemplate="%{y:.3f}",
        textposition="outside",
    )
    if champion:
        fig.add_bar(
            name=champ_name,
            x=[label for _, label in keys],
            y=[champion.get(k) for k, _ in keys],
            marker_color="#8a93a3",
            texttemplate="%{y:.3f}",
            textposition="outside",
        )
    fig.update_yaxes(range=[0, 1.1])
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.2))
    return _layout(fig, "Test-split metrics, side by side").to_json()
