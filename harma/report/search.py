"""Tidy tables of search studies (Optuna sampling, ASHA stopping), from the trials and epochs frames.

The objective is the best validation mR of a trial (`val_r_mean`, maximised).  Trials that finished with an
objective (COMPLETE or PRUNED) are "observed" and appear in the per-trial views; the best-so-far curves,
Pareto fronts and the top-k table use COMPLETE trials only, while GPU-hours accumulate over every finished
trial, pruned and failed ones included, since they were paid for.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from harma.report.overrides import row_params, set_command
from harma.report.stats import pareto_mask

OBJECTIVE = "val_r_mean"
OBSERVED = ("COMPLETE", "PRUNED")


def observed(trials: pd.DataFrame) -> pd.DataFrame:
    """Finished trials with an objective value (COMPLETE or PRUNED)."""
    return trials[trials["status"].isin(OBSERVED) & trials[OBJECTIVE].notna()].reset_index(drop=True)


def best_so_far_by_trial(trials: pd.DataFrame) -> pd.DataFrame:
    """Every trial in start order (trial_number 1..N) with its objective and the best COMPLETE one so far."""
    out = trials[["trial_id", "status", OBJECTIVE]].rename(columns={OBJECTIVE: "objective"}).copy()
    out.insert(0, "trial_number", np.arange(1, len(out) + 1))
    counted = out["objective"].where(out["status"] == "COMPLETE")
    out["best_so_far"] = counted.astype(float).cummax().ffill()
    return out.reset_index(drop=True)


def best_so_far_by_gpu(trials: pd.DataFrame) -> pd.DataFrame:
    """Finished trials in finish order with cumulative GPU-hours and the best COMPLETE objective so far."""
    done = trials[trials["finished_at"].notna()].sort_values(["finished_at", "trial_id"], kind="stable")
    out = done[["trial_id", "status", "gpu_hours", OBJECTIVE]].rename(columns={OBJECTIVE: "objective"})
    out = out.reset_index(drop=True)
    out["cumulative_gpu_hours"] = out["gpu_hours"].fillna(0.0).cumsum()
    out["best_so_far"] = out["objective"].where(out["status"] == "COMPLETE").astype(float).cummax().ffill()
    return out


def asha_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Per trial: status, epochs run (stop_epoch), best epoch and objective, in start order."""
    cols = ["trial_id", "status", "stop_epoch", "best_epoch", OBJECTIVE]
    return trials[cols].rename(columns={OBJECTIVE: "objective"}).reset_index(drop=True)


def stop_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """How many trials stopped after each epoch count, by status (ASHA rungs show up as PRUNED peaks)."""
    sub = trials[trials["stop_epoch"].notna()]
    if sub.empty:
        return pd.DataFrame(columns=["stop_epoch", "status", "trials"])
    g = sub.groupby([sub["stop_epoch"].astype(int), "status"]).size().rename("trials").reset_index()
    return g.sort_values(["stop_epoch", "status"], kind="stable").reset_index(drop=True)


def rungs(trials: pd.DataFrame) -> list[int]:
    """Epoch counts at which ASHA stopped at least one trial (the distinct PRUNED stop epochs)."""
    pruned = trials.loc[trials["status"] == "PRUNED", "stop_epoch"].dropna()
    return sorted({int(e) for e in pruned})


def trial_curves(trials: pd.DataFrame, epochs: pd.DataFrame, split: str = "val",
                 metric: str = "r_mean") -> pd.DataFrame:
    """Long table trial_id, status, epoch, value of one metric for every trial (learning curves)."""
    sel = epochs[(epochs["split"] == split) & (epochs["metric"] == metric)]
    merged = sel[["trial_id", "epoch", "value"]].merge(trials[["trial_id", "status"]], on="trial_id")
    merged = merged.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)
    return merged[["trial_id", "status", "epoch", "value"]]


def pareto_table(trials: pd.DataFrame, cost: str) -> pd.DataFrame:
    """COMPLETE trials with `cost` and objective, and whether each is on the Pareto front."""
    done = trials[(trials["status"] == "COMPLETE") & trials[OBJECTIVE].notna() & trials[cost].notna()]
    out = done[["trial_id", cost, OBJECTIVE]].rename(columns={OBJECTIVE: "objective"}).copy()
    out[cost] = out[cost].astype(float)
    out["on_front"] = pareto_mask(out[cost].to_numpy(), out["objective"].to_numpy())
    return out.sort_values([cost, "trial_id"], kind="stable").reset_index(drop=True)


def top_k(trials: pd.DataFrame, params: list[str], k: int = 10) -> pd.DataFrame:
    """The k best COMPLETE trials by objective with their parameters and `--set` overrides."""
    done = trials[(trials["status"] == "COMPLETE") & trials[OBJECTIVE].notna()]
    done = done.sort_values([OBJECTIVE, "trial_id"], ascending=[False, True], kind="stable").head(k)
    cols = ["trial_id", OBJECTIVE, "test_r_mean", "gpu_hours", "trainable_params", *params]
    out = done[cols].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out["overrides"] = [set_command(row_params(r)) for r in done.to_dict("records")]
    return out


def slice_table(trials: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """Observed trials with the searched parameters and the objective (one slice plot per parameter)."""
    obs = observed(trials)
    return obs[["trial_id", "status", *params, OBJECTIVE]].rename(columns={OBJECTIVE: "objective"})


def is_log_scale(values: pd.Series) -> bool:
    """Whether a numeric parameter is best shown on a log axis (positive, max/min ≥ 20)."""
    try:
        v = values.dropna().astype(float)
    except (TypeError, ValueError):
        return False
    if v.empty or (v <= 0).any():
        return False
    return v.max() / v.min() >= 20
