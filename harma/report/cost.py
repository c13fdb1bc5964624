"""Which cost a page plots, so a cost axis means something on any machine: GPU-hours when any trial held a
GPU, otherwise CPU core-hours (a trial's wall time × the CPUs it held, known from the study file), otherwise
wall-clock hours.  `cost_basis` chooses and names it, `add_cost` puts it in a `cost_hours` column, and
`best_so_far_by_cost` is the search progress (each row's own objective, in the study's direction) against cost
accumulated in finish order (pruned and failed trials included, since they were paid for).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harma.report.spec import StudySpec
from harma.results.trials import COMPLETE, objective_values, signed_scores, study_objective

COST = "cost_hours"


@dataclass(frozen=True)
class CostBasis:
    label: str        # axis and column title: "GPU-hours", "CPU core-hours" or "wall-clock hours"
    short: str        # in hover texts: "GPU-h", "core-h", "h"
    how: str          # one sentence for the page


def cost_basis(trials: pd.DataFrame, spec: StudySpec | None) -> CostBasis:
    """GPU-hours if any trial has GPU seconds > 0, else CPU core-hours with a known CPU count, else wall hours."""
    gpu = pd.to_numeric(trials.get("gpu_seconds", pd.Series(dtype=float)), errors="coerce")
    if (gpu > 0).any():
        return CostBasis("GPU-hours", "GPU-h", "Cost is GPU-hours: each trial's wall time × the GPUs it held.")
    if spec is not None:
        return CostBasis("CPU core-hours", "core-h",
                         f"No trial held a GPU, so cost is CPU core-hours: each trial's wall time × the "
                         f"{spec.cpus_per_trial:g} CPU(s) it held (resources in {spec.source}).")
    return CostBasis("wall-clock hours", "h", "No trial held a GPU and the study file (CPUs per trial) is "
                     "unknown, so cost is each trial's wall-clock hours.")


def add_cost(trials: pd.DataFrame, basis: CostBasis, spec: StudySpec | None) -> pd.DataFrame:
    """The trials with `cost_hours` in the chosen basis (NaN where the trial recorded no time)."""
    out = trials.copy()
    wall = pd.to_numeric(out["wall_seconds"], errors="coerce").astype(float) / 3600.0
    if basis.label == "GPU-hours":
        out[COST] = pd.to_numeric(out["gpu_seconds"], errors="coerce").astype(float) / 3600.0
    elif basis.label == "CPU core-hours":
        out[COST] = wall * (spec.cpus_per_trial if spec is not None else 1.0)
    else:
        out[COST] = wall
    return out


def best_so_far_by_cost(trials: pd.DataFrame) -> pd.DataFrame:
    """Finished trials in finish order with cumulative `cost_hours` and the best COMPLETE objective so far."""
    done = trials[trials["finished_at"].notna()].sort_values(["finished_at", "trial_id"], kind="stable")
    out = done.assign(objective=objective_values(done))[["trial_id", "status", COST, "objective"]]
    out = out.reset_index(drop=True)
    out["cumulative_cost_hours"] = out[COST].fillna(0.0).cumsum()
    if not len(out):
        out["best_so_far"] = pd.Series(dtype=float)
        return out
    sign = -1.0 if study_objective(done)[1] == "min" else 1.0
    signed = pd.Series(signed_scores(done).to_numpy()).where(out["status"] == COMPLETE).astype(float)
    out["best_so_far"] = signed.cummax().ffill() * sign
    return out

