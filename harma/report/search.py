"""Tidy tables of search studies (Optuna sampling, early stopping), from the trials and epochs frames.

The objective of a trial is the one its row names (`objective`, e.g. `val_r_mean`, with `objective_mode` max
or min: the study's objective), and every table gives it as an `objective` column.  Trials that finished
with an objective (COMPLETE or PRUNED) are "observed" and appear in the per-trial views; the best-so-far
curves, Pareto fronts and the top-k table use COMPLETE trials only, ranked by `harma.results.trials`
(progress against cost is `harma.report.cost.best_so_far_by_cost`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from harma.report.stats import pareto_mask
from harma.results.overrides import set_command
from harma.results.trials import (
    COMPLETE,
    OBSERVED,
    PRUNED,
    best_first,
    objective_parts,
    objective_values,
    row_overrides,
    signed_scores,
    study_objective,
)


def _with_objective(trials: pd.DataFrame) -> pd.DataFrame:
    return trials.assign(objective=objective_values(trials))


def _best_so_far(table: pd.DataFrame, trials: pd.DataFrame) -> pd.Series:
    """Best COMPLETE objective up to each row, in the study's direction (NaN before the first)."""
    if len(trials) == 0:
        return pd.Series([], dtype=float, index=table.index)
    sign = -1.0 if study_objective(trials)[1] == "min" else 1.0
    signed = pd.Series(signed_scores(trials).to_numpy(), index=table.index)
    return signed.where(table["status"] == COMPLETE).astype(float).cummax().ffill() * sign


def observed(trials: pd.DataFrame) -> pd.DataFrame:
    """Finished trials with an objective value (COMPLETE or PRUNED), with an `objective` column."""
    out = _with_objective(trials)
    return out[out["status"].isin(OBSERVED) & out["objective"].notna()].reset_index(drop=True)


def best_so_far_by_trial(trials: pd.DataFrame) -> pd.DataFrame:
    """Every trial in start order (trial_number 1..N) with its objective and the best COMPLETE one so far."""
    out = _with_objective(trials)[["trial_id", "status", "objective"]].copy()
    out.insert(0, "trial_number", np.arange(1, len(out) + 1))
    out["best_so_far"] = _best_so_far(out, trials)
    return out.reset_index(drop=True)


def stopping_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Per trial: status, epochs run (stop_epoch), best epoch and objective, in start order."""
    cols = ["trial_id", "status", "stop_epoch", "best_epoch", "objective"]
    return _with_objective(trials)[cols].reset_index(drop=True)


def stop_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """How many trials stopped after each epoch count, by status (a scheduler's rungs show up as PRUNED peaks)."""
    sub = trials[trials["stop_epoch"].notna()]
    if sub.empty:
        return pd.DataFrame(columns=["stop_epoch", "status", "trials"])
    g = sub.groupby([sub["stop_epoch"].astype(int), "status"]).size().rename("trials").reset_index()
    return g.sort_values(["stop_epoch", "status"], kind="stable").reset_index(drop=True)


def rungs(trials: pd.DataFrame) -> list[int]:
    """Epoch counts at which the scheduler stopped at least one trial (the distinct PRUNED stop epochs)."""
    pruned = trials.loc[trials["status"] == PRUNED, "stop_epoch"].dropna()
    return sorted({int(e) for e in pruned})


def trial_curves(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Long table trial_id, status, epoch, objective (its column, e.g. `val_txt_r1`), value: the study's objective
    by epoch for every trial, as its trials record it (the learning curves early stopping acts on)."""
    cols = ["trial_id", "status", "epoch", "objective", "value"]
    if len(trials) == 0:
        return pd.DataFrame(columns=cols)
    objective = study_objective(trials)[0]
    split, metric = objective_parts(objective)
    sel = epochs[(epochs["split"] == split) & (epochs["metric"] == metric)]
    merged = sel[["trial_id", "epoch", "value"]].merge(trials[["trial_id", "status"]], on="trial_id")
    merged = merged.sort_values(["trial_id", "epoch"], kind="stable").reset_index(drop=True)
    return merged.assign(objective=objective)[cols]


def pareto_table(trials: pd.DataFrame, cost: str) -> pd.DataFrame:
    """COMPLETE trials with `cost` and objective, and whether each is on the Pareto front (lower cost,
    better objective in the study's direction)."""
    done = trials[(trials["status"] == COMPLETE) & trials[cost].notna()]
    done = done.assign(objective=objective_values(done), _signed=signed_scores(done))
    done = done[done["objective"].notna()]
    out = done[["trial_id", cost, "objective"]].copy()
    out[cost] = out[cost].astype(float)
    out["on_front"] = pareto_mask(out[cost].to_numpy(), done["_signed"].to_numpy())
    return out.sort_values([cost, "trial_id"], kind="stable").reset_index(drop=True)


def top_k(trials: pd.DataFrame, params: list[str], k: int = 10) -> pd.DataFrame:
    """The k best COMPLETE trials by their objective with their parameters and `--set` overrides."""
    done = best_first(trials).head(k)
    done = done.assign(objective=objective_values(done))
    cols = ["trial_id", "objective", "test_r_mean", "gpu_hours", "trainable_params", *params]
    out = done[cols].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out["overrides"] = [set_command(row_overrides(r)) for r in done.to_dict("records")]
    return out


def slice_table(trials: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """Observed trials with the searched parameters and the objective (one slice plot per parameter)."""
    return observed(trials)[["trial_id", "status", *params, "objective"]]


def is_log_scale(values: pd.Series) -> bool:
    """Whether a numeric parameter is best shown on a log axis (positive, max/min ≥ 20)."""
    try:
        v = values.dropna().astype(float)
    except (TypeError, ValueError):
        return False
    if v.empty or (v <= 0).any():
        return False
    return v.max() / v.min() >= 20
