"""Plotly figures for search studies, each built from one tidy table of harma.report.search.

Best-so-far curves (by trial number and by cost), early stopping (the learning curve of the objective of every
trial with the epochs where trials were pruned marked, and how many trials stopped where), parallel
coordinates over the searched parameters coloured by the objective (SVG lines, not Plotly's WebGL parcoords),
Optuna importances, one slice plot per parameter, and Pareto fronts of the objective against cost.
Parameter names and values are user text and are escaped with `label`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from harma.report.cost import CostBasis
from harma.report.figures import label, styled
from harma.report.search import is_log_scale
from harma.results.trials import COMPLETE, FAILED, OBSERVED, PRUNED, RUNNING, is_param_column, param_key

STATUS_COLORS = {COMPLETE: "#1f77b4", PRUNED: "#a0a0a0", FAILED: "#d62728", RUNNING: "#ff7f0e"}
OBJ = "val mR (%)"


def _short(param: str) -> str:
    return param_key(param) if is_param_column(param) else param


def best_by_trial_chart(table: pd.DataFrame, objective: str = OBJ) -> go.Figure:
    """Objective of every observed trial (by status) and the best COMPLETE objective so far."""
    fig = go.Figure()
    for status in OBSERVED:
        rows = table[(table["status"] == status) & table["objective"].notna()]
        fig.add_trace(go.Scatter(x=rows["trial_number"].tolist(), y=rows["objective"].tolist(), mode="markers",
                                 name=status.lower(), marker=dict(color=STATUS_COLORS[status], size=8),
                                 text=[label(t) for t in rows["trial_id"]],
                                 hovertemplate="trial %{x} (%{text}): %{y:.2f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=table["trial_number"].tolist(), y=table["best_so_far"].tolist(), mode="lines",
                             name="best so far", line=dict(shape="hv", color="#2ca02c", width=2)))
    fig.update_xaxes(tickformat="d")
    return styled(fig, "Best-so-far objective by trial (start order)", "trial number (as in the trial id)", objective)


def best_by_cost_chart(table: pd.DataFrame, basis: CostBasis, objective: str = OBJ) -> go.Figure:
    """Best COMPLETE objective so far against the cumulative cost (GPU-hours, CPU core-hours or wall hours) of
    all finished trials."""
    fig = go.Figure()
    done = table[(table["status"] == COMPLETE) & table["objective"].notna()]
    fig.add_trace(go.Scatter(x=done["cumulative_cost_hours"].tolist(), y=done["objective"].tolist(),
                             mode="markers", name="complete trial", text=[label(t) for t in done["trial_id"]],
                             marker=dict(color=STATUS_COLORS[COMPLETE], size=8),
                             hovertemplate=f"%{{text}}: %{{y:.2f}} at %{{x:.3g}} {basis.short}<extra></extra>"))
    fig.add_trace(go.Scatter(x=table["cumulative_cost_hours"].tolist(), y=table["best_so_far"].tolist(),
                             mode="lines", name="best so far", line=dict(shape="hv", color="#2ca02c", width=2)))
    fig = styled(fig, f"Best-so-far objective by {basis.label} spent (finish order)", f"cumulative {basis.label}",
                 objective)
    fig.update_xaxes(rangemode="tozero")
    return fig


def curves_chart(curves: pd.DataFrame, rungs: list[int], objective: str = OBJ) -> go.Figure:
    """The objective by epoch of every trial (harma.report.search.trial_curves), coloured by status, with the
    epochs where the scheduler pruned trials as dotted lines; `objective` labels it (`val txt_r1 (min)`)."""
    fig = go.Figure()
    shown: set[str] = set()
    for trial_id, rows in curves.groupby("trial_id", sort=True):
        status = str(rows["status"].iloc[0])
        fig.add_trace(go.Scatter(
            x=rows["epoch"].astype(int).tolist(), y=rows["value"].tolist(), mode="lines+markers",
            name=status.lower(), legendgroup=status, showlegend=status not in shown,
            line=dict(color=STATUS_COLORS.get(status, "#444"), width=1.5), marker=dict(size=4),
            text=[label(trial_id)] * len(rows), hovertemplate="%{text} epoch %{x}: %{y:.2f}<extra></extra>"))
        shown.add(status)
    if len(curves) and curves["epoch"].max() <= 30:
        fig.update_xaxes(dtick=1)
    for rung in rungs:
        fig.add_vline(x=rung, line=dict(color="#888", width=1, dash="dot"))
    return styled(fig, f"Learning curves: {objective} by epoch per trial (dotted lines: epochs where trials were "
                       "pruned)", "epoch", objective)


def stop_chart(counts: pd.DataFrame) -> go.Figure:
    """Stacked bars: number of trials that stopped after each epoch count, by status."""
    fig = go.Figure()
    for status in sorted(set(counts["status"]), key=lambda s: list(STATUS_COLORS).index(s)
                         if s in STATUS_COLORS else 99):
        rows = counts[counts["status"] == status]
        fig.add_trace(go.Bar(x=rows["stop_epoch"].tolist(), y=rows["trials"].tolist(), name=status.lower(),
                             marker_color=STATUS_COLORS.get(status, "#444")))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(tickformat="d", dtick=1 if len(counts) and counts["stop_epoch"].max() <= 30 else None)
    fig.update_yaxes(tickformat="d", rangemode="tozero")
    return styled(fig, "Epochs each trial ran before it stopped", "epochs run", "trials", height=340)


def _axis(values: pd.Series, name: str) -> tuple[str, list[float], list[tuple[float, str]]]:
    """One axis of the parallel chart: its label, the values mapped to [0, 1], and (position, text) ticks.

    Numbers are scaled min to max (log10 first for wide positive ranges); categories are spread evenly in
    sorted order; a constant axis sits at 0.5."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        v = values.astype(float).to_numpy()
        log = is_log_scale(values)
        shown = np.log10(v) if log else v
        lo, hi = float(np.nanmin(shown)), float(np.nanmax(shown))
        span = hi - lo
        norm = [0.5 if span == 0 else (x - lo) / span for x in shown]
        ends = [(0.0, f"{np.nanmin(v):.3g}"), (1.0, f"{np.nanmax(v):.3g}")] if span else [(0.5, f"{lo:.3g}")]
        return (f"{label(name)} (log)" if log else label(name)), norm, ends
    cats = sorted(values.astype(str).unique())
    step = 1.0 / (len(cats) - 1) if len(cats) > 1 else 0.0
    pos = {c: (i * step if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
    return label(name), [pos[x] for x in values.astype(str)], [(pos[c], label(c)) for c in cats]


def parallel_chart(table: pd.DataFrame, params: list[str], objective_name: str = "val mR") -> go.Figure:
    """Parallel coordinates drawn as SVG lines (Plotly's parcoords needs WebGL): one vertical axis per searched
    parameter and one for the objective, each scaled to its own range, one line per observed trial coloured
    by its objective (Viridis), with each axis's range or categories written beside it."""
    axes = [_axis(table[p], _short(p)) for p in params]
    objective = table["objective"].astype(float)
    axes.append(_axis(objective, objective_name))
    lo, hi = float(objective.min()), float(objective.max())
    shade = [0.5 if hi == lo else (v - lo) / (hi - lo) for v in objective]
    colors = sample_colorscale("Viridis", shade)
    fig = go.Figure()
    x = list(range(len(axes)))
    for k, row in enumerate(table.reset_index(drop=True).itertuples(index=False)):
        values = [f"{_short(p)}={label(table[p].iloc[k])}" for p in params]
        fig.add_trace(go.Scatter(
            x=x, y=[a[1][k] for a in axes], mode="lines+markers", showlegend=False,
            line=dict(color=colors[k], width=2), marker=dict(size=5, color=colors[k]),
            opacity=0.85 if row.status == COMPLETE else 0.45,
            hovertemplate=f"{label(row.trial_id)} ({str(row.status).lower()}): {objective_name} {row.objective:.2f}<br>"
                          + "<br>".join(values) + "<extra></extra>"))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                             marker=dict(colorscale="Viridis", cmin=lo, cmax=hi, color=[lo], showscale=True,
                                         colorbar=dict(title=objective_name))))
    for i, (_, _, ticks) in enumerate(axes):
        fig.add_shape(type="line", x0=i, x1=i, y0=0, y1=1, line=dict(color="#444", width=1), layer="below")
        for pos, text in ticks:
            fig.add_annotation(x=i, y=pos, text=text, showarrow=False, xanchor="left", xshift=4,
                               font=dict(size=10, color="#333"), bgcolor="rgba(255,255,255,0.7)")
    fig.update_xaxes(tickvals=x, ticktext=[a[0] for a in axes], range=[-0.3, len(axes) - 0.4], showgrid=False,
                     zeroline=False, side="top")
    fig.update_yaxes(range=[-0.05, 1.05], showticklabels=False, showgrid=False, zeroline=False)
    fig = styled(fig, "Searched parameters of observed trials (each axis scaled to its own range), coloured by "
                 f"{objective_name}", "", "", height=460)
    fig.update_layout(margin=dict(l=40, r=60, t=110, b=30))
    return fig


def importance_chart(frame: pd.DataFrame, n: int) -> go.Figure:
    """Horizontal bars of Optuna parameter importances, most important on top, titled with n trials."""
    rows = frame.iloc[::-1]
    fig = go.Figure(go.Bar(x=rows["importance"].tolist(), y=[label(p) for p in rows["param"]],
                           orientation="h", marker_color="#1f77b4"))
    return styled(fig, f"Optuna parameter importances (n = {n} COMPLETE trials)", "importance (sums to 1)", "",
                  height=max(260, 60 + 40 * len(frame)))


def slices_chart(table: pd.DataFrame, params: list[str], objective: str = OBJ) -> go.Figure:
    """One panel per searched parameter: parameter value against objective, by status."""
    ncols = min(3, len(params))
    nrows = math.ceil(len(params) / ncols)
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=[label(_short(p)) for p in params],
                        horizontal_spacing=0.08, vertical_spacing=0.16)
    for i, p in enumerate(params):
        r, c = i // ncols + 1, i % ncols + 1
        for status in OBSERVED:
            rows = table[(table["status"] == status) & table[p].notna()]
            x = rows[p]
            is_cat = not pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)
            fig.add_trace(go.Scatter(
                x=[label(v) for v in x.astype(str)] if is_cat else x.astype(float).tolist(),
                y=rows["objective"].tolist(), mode="markers", name=status.lower(), legendgroup=status,
                showlegend=i == 0, marker=dict(color=STATUS_COLORS[status], size=7),
                text=[label(t) for t in rows["trial_id"]],
                hovertemplate="%{text}: %{x} → %{y:.2f}<extra></extra>"), row=r, col=c)
        if is_log_scale(table[p]) and pd.api.types.is_numeric_dtype(table[p]):
            fig.update_xaxes(type="log", row=r, col=c)
        if c == 1:
            fig.update_yaxes(title_text=objective, row=r, col=c)
    fig = styled(fig, "Slice plots: objective against each searched parameter", None, None,
                 height=140 + 300 * nrows)
    fig.update_layout(margin=dict(t=90))
    return fig


def pareto_chart(table: pd.DataFrame, cost: str, cost_label: str, log_x: bool = False,
                 objective: str = OBJ) -> go.Figure:
    """All COMPLETE trials as points and the Pareto front (max mR, min cost) as a step line."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=table[cost].tolist(), y=table["objective"].tolist(), mode="markers",
                             name="complete trial", marker=dict(color="#a0a0a0", size=8),
                             text=[label(t) for t in table["trial_id"]],
                             hovertemplate="%{text}: %{y:.2f} at %{x:,.4g}<extra></extra>"))
    front = table[table["on_front"]].sort_values(cost)
    fig.add_trace(go.Scatter(x=front[cost].tolist(), y=front["objective"].tolist(), mode="lines+markers",
                             name="Pareto front", line=dict(shape="hv", color="#d62728", width=2),
                             marker=dict(size=10, color="#d62728"), text=[label(t) for t in front["trial_id"]],
                             hovertemplate="%{text}: %{y:.2f} at %{x:,.4g}<extra></extra>"))
    if log_x:
        fig.update_xaxes(type="log")
    return styled(fig, f"Pareto front: {objective} against {cost_label}", cost_label, objective)
