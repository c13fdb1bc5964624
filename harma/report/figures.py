"""Plotly figures for arm-based studies (ablations, replicates), each built from one tidy table.

Figures use only SVG trace types (no WebGL) so they render anywhere, and every piece of user text that
reaches a label (arm names) goes through `label`, which HTML-escapes it: Plotly interprets a few HTML tags
in labels, and escaping makes it show the text literally.
"""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from harma.report.stats import MIN_TEST_PAIRS

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
METRIC_LABELS = {"val_r_mean": "val mR", "test_r_mean": "test mR"}


def label(text: object) -> str:
    """User text made safe for Plotly labels (shown literally)."""
    return html.escape(str(text), quote=False)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def styled(fig: go.Figure, title: str, x: str, y: str, height: int = 420) -> go.Figure:
    fig.update_layout(template="plotly_white", title=dict(text=title, x=0.01), height=height,
                      margin=dict(l=60, r=20, t=50, b=60), xaxis_title=x, yaxis_title=y)
    return fig


def _offsets(n: int, width: float = 0.36) -> list[float]:
    return [0.0] if n == 1 else [-width / 2 + width * k / (n - 1) for k in range(n)]


def _arm_axis(fig: go.Figure, arms: list[str], counts: list[int] | None = None, what: str = "seeds") -> None:
    text = [label(a) if counts is None else f"{label(a)}<br>({n} {what})" for a, n in zip(arms, counts or arms)]
    fig.update_xaxes(tickvals=list(range(len(arms))), ticktext=text, range=[-0.6, len(arms) - 0.4],
                     zeroline=False)


def _error(mean: pd.Series, low: pd.Series, high: pd.Series) -> dict:
    return dict(type="data", symmetric=False, array=(high - mean).tolist(), arrayminus=(mean - low).tolist(),
                thickness=2, width=8)


def arms_chart(summary: pd.DataFrame, per_seed: pd.DataFrame, arms: list[str],
               metrics: tuple[str, ...] = ("val_r_mean", "test_r_mean")) -> go.Figure:
    """Mean mR per arm with 95% CI error bars, side by side per metric, each seed as a faint dot beside it."""
    fig = go.Figure()
    position = {a: i for i, a in enumerate(arms)}
    for (metric, off), i in zip(zip(metrics, _offsets(len(metrics))), range(len(metrics))):
        rows = summary[summary["metric"] == metric].set_index("arm").reindex(arms)
        name = METRIC_LABELS.get(metric, metric)
        fig.add_trace(go.Scatter(
            x=[k + off for k in range(len(arms))], y=rows["mean"].tolist(), mode="markers",
            name=f"{name} mean ± 95% CI", marker=dict(size=11, color=color(i)), legendgroup=metric,
            error_y=_error(rows["mean"], rows["ci_low"], rows["ci_high"]),
            customdata=list(zip([label(a) for a in arms], rows["n"].tolist())),
            hovertemplate="%{customdata[0]}: %{y:.2f} (n=%{customdata[1]})<extra></extra>"))
        seeds = per_seed[per_seed["arm"].isin(arms)]
        fig.add_trace(go.Scatter(
            x=[position[a] + off + 0.06 for a in seeds["arm"]], y=seeds[metric].astype(float).tolist(),
            mode="markers", name=f"{name} per seed", marker=dict(size=6, color=rgba(color(i), 0.5)),
            legendgroup=metric, customdata=list(zip([label(a) for a in seeds["arm"]], seeds["seed"].tolist())),
            hovertemplate="%{customdata[0]} seed %{customdata[1]}: %{y:.2f}<extra></extra>"))
    n = summary[summary["metric"] == metrics[0]].set_index("arm").reindex(arms)["n"].fillna(0).astype(int)
    _arm_axis(fig, arms, n.tolist())
    return styled(fig, "mR per arm (mean ± 95% CI over seeds, cut to [0, 100])", "arm", "mR (%)")


def paired_chart(diffs: pd.DataFrame, arms: list[str],
                 metrics: tuple[str, ...] = ("val_r_mean", "test_r_mean")) -> go.Figure:
    """Mean paired difference to the reference arm with 95% CI, per arm and metric, with a zero line."""
    fig = go.Figure()
    others = [a for a in arms if a in set(diffs["arm"])]
    for (metric, off), i in zip(zip(metrics, _offsets(len(metrics))), range(len(metrics))):
        rows = diffs[diffs["metric"] == metric].set_index("arm").reindex(others)
        fig.add_trace(go.Scatter(
            x=[k + off for k in range(len(others))], y=rows["mean_diff"].tolist(),
            name=f"Δ {METRIC_LABELS.get(metric, metric)}", marker=dict(size=11, color=color(i), symbol="diamond"),
            error_y=_error(rows["mean_diff"], rows["ci_low"], rows["ci_high"]),
            mode="markers+text", text=[test_label(r) for r in rows.to_dict("records")],
            textposition="middle right", textfont=dict(size=11, color=color(i)),
            customdata=list(zip([label(a) for a in others], rows["n_pairs"].tolist())),
            hovertemplate="%{customdata[0]}: Δ %{y:.2f} (pairs=%{customdata[1]}; %{text})<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#555", width=1, dash="dash"))
    pairs = diffs.groupby("arm")["n_pairs"].max().reindex(others).fillna(0).astype(int)
    _arm_axis(fig, others, pairs.tolist(), "paired seeds")
    ref = label(diffs["reference"].iloc[0]) if len(diffs) else ""
    return styled(fig, f"Paired difference to reference arm '{ref}' (mean ± 95% CI over seeds)", "arm",
                  "Δ mR (percentage points)")


def test_label(row: dict) -> str:
    """Text beside a paired difference: 'Holm p=0.031', or '2 seeds: no test' when none was run."""
    n = int(row.get("n_pairs") or 0)
    if n < MIN_TEST_PAIRS:
        return f"{n} seed{'' if n == 1 else 's'}: no test"
    if row.get("test") == "none" or row.get("p_holm") != row.get("p_holm"):
        return "no test (differences all equal)"
    return f"Holm p={row['p_holm']:.3g}"


def curves_chart(curves: pd.DataFrame, arms: list[str], metric_label: str = "val mR") -> go.Figure:
    """Per-arm mean learning curve with a min–max band over seeds."""
    fig = go.Figure()
    for i, arm in enumerate(a for a in arms if a in set(curves["arm"])):
        rows = curves[curves["arm"] == arm].sort_values("epoch")
        x, c = rows["epoch"].tolist(), color(i)
        fig.add_trace(go.Scatter(
            x=x + x[::-1], y=rows["high"].tolist() + rows["low"].tolist()[::-1], fill="toself", mode="lines",
            fillcolor=rgba(c, 0.15), line=dict(width=0), hoverinfo="skip", showlegend=False,
            legendgroup=label(arm)))
        fig.add_trace(go.Scatter(
            x=x, y=rows["mean"].tolist(), mode="lines+markers", name=label(arm), legendgroup=label(arm),
            line=dict(color=c, width=2), marker=dict(size=4), customdata=rows["n"].tolist(),
            hovertemplate="epoch %{x}: %{y:.2f} (seeds=%{customdata})"))
    if len(curves) and curves["epoch"].max() <= 30:
        fig.update_xaxes(dtick=1)
    return styled(fig, f"{metric_label} by epoch per arm (mean, band = min–max over seeds)", "epoch",
                  f"{metric_label} (%)")
