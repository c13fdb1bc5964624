"""Shared preparation of the trials and epochs frames read from Parquet, before any page-specific table.

Which trials count (only COMPLETE ones enter statistics; one row per arm and seed, the last finished if a
seed was run twice), how many were left out by status, derived columns (GPU-hours, display arm names), a
deterministic trial order, and the searched versus fixed parameter columns.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from harma.results.trials import COMPLETE, STATUSES, param_columns
from harma.terms import KINDS

STATUS_ORDER = STATUSES
NO_ARM = "(no arm)"


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    """Count of trials per status, every status present as a key (unknown statuses appended)."""
    counts = {s: int((trials["status"] == s).sum()) for s in STATUS_ORDER}
    for s in sorted(set(trials["status"].dropna()) - set(STATUS_ORDER)):
        counts[s] = int((trials["status"] == s).sum())
    return counts


def exclusion_text(trials: pd.DataFrame, used: str = COMPLETE) -> str:
    """'12 trials: 9 COMPLETE used; excluded 2 PRUNED, 1 FAILED, 0 RUNNING.'"""
    counts = status_counts(trials)
    excluded = ", ".join(f"{n} {s}" for s, n in counts.items() if s != used)
    return f"{len(trials)} trials: {counts.get(used, 0)} {used} used; excluded {excluded}."


def prepare(trials: pd.DataFrame) -> pd.DataFrame:
    """Add `gpu_hours` and a display `arm_label`; sort deterministically by start time then trial id."""
    out = trials.copy()
    out["gpu_hours"] = out["gpu_seconds"].astype(float) / 3600.0
    out["arm_label"] = out["arm"].astype(object).where(out["arm"].notna(), NO_ARM).astype(str)
    out = out.sort_values(["started_at", "trial_id"], na_position="last", kind="stable")
    return out.reset_index(drop=True)


def complete_per_seed(trials: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials, one per (arm, seed): the last finished wins when a seed appears twice."""
    done = trials[trials["status"] == COMPLETE]
    done = done.sort_values(["finished_at", "trial_id"], na_position="first", kind="stable")
    with_seed = done[done["seed"].notna()].drop_duplicates(["arm_label", "seed"], keep="last")
    return pd.concat([with_seed, done[done["seed"].isna()]]).sort_values(
        ["arm_label", "seed", "trial_id"], kind="stable").reset_index(drop=True)


def arm_order(arms: list[str] | pd.Series, reference: str | None) -> list[str]:
    """Reference arm first (when present), then the others sorted."""
    names = sorted(set(arms))
    if reference in names:
        names.remove(reference)
        names.insert(0, reference)
    return names


def searched_params(trials: pd.DataFrame) -> list[str]:
    """Parameter columns that take at least two distinct values among the given trials."""
    return [c for c in param_columns(trials) if trials[c].dropna().astype(str).nunique() >= 2]


def fixed_params(trials: pd.DataFrame) -> dict[str, object]:
    """Parameter columns with a single value among the trials: {column: value}."""
    out = {}
    for c in param_columns(trials):
        values = trials[c].dropna()
        if len(values) and values.astype(str).nunique() == 1:
            out[c] = values.iloc[0]
    return out


def kinds(trials: pd.DataFrame) -> list[str]:
    """Kinds present in the study, in the order search, ablation, replicate."""
    present = set(trials["kind"].dropna())
    return [k for k in KINDS if k in present]


def trial_numbers(trial_ids: pd.Series) -> np.ndarray:
    """The number at the end of each trial id (`trial-0007` -> 7, as Optuna numbers them) when every id has a
    distinct one, else the 0-based start order."""
    found = trial_ids.astype(str).str.extract(r"(\d+)$")[0]
    if found.notna().all() and found.astype(int).is_unique:
        return found.astype(int).to_numpy()
    return np.arange(len(trial_ids))
