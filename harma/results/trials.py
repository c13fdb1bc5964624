"""The one owner of what a trials row means: its status vocabulary, its `param.<key>` columns, missing
values, the `--set` overrides a row decodes to, and the ranking of rows by each row's own objective.

Every other module (the study driver, `study status`, the report tables, the CLI) asks this module rather
than spelling a status, the parameter prefix or an objective column itself, and for the number of COMPLETE
trials from which parameter importances are shown (`MIN_IMPORTANCE_TRIALS`).  A row's objective is named in
the row (`objective`, e.g. `val_r_mean`, and `objective_mode`, max or min), so trials of several studies
with different objectives rank correctly side by side.  pandas is imported by the functions that need it, so
a command that only needs a status name or the importance minimum (argument parsing, a usage error) never loads
it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harma.terms import MODES

if TYPE_CHECKING:
    import pandas as pd


COMPLETE, PRUNED, FAILED, RUNNING = "COMPLETE", "PRUNED", "FAILED", "RUNNING"
STATUSES = (COMPLETE, PRUNED, FAILED, RUNNING)
FINISHED = (COMPLETE, PRUNED, FAILED)
OBSERVED = (COMPLETE, PRUNED)          # finished with an objective value
PARAM_PREFIX = "param."
MIN_IMPORTANCE_TRIALS = 10     # importances are shown from this many COMPLETE trials on: fewer mostly give noise


def param_column(key: str) -> str:
    """`adapter.bottleneck` -> `param.adapter.bottleneck`."""
    return PARAM_PREFIX + key


def param_key(column: str) -> str:
    """`param.adapter.bottleneck` -> `adapter.bottleneck` (ValueError for another column)."""
    if not is_param_column(column):
        raise ValueError(f"column {column!r} is not a parameter column ({PARAM_PREFIX}<key>)")
    return column[len(PARAM_PREFIX):]


def is_param_column(column: Any) -> bool:
    return isinstance(column, str) and column.startswith(PARAM_PREFIX)


def param_columns(trials: pd.DataFrame) -> list[str]:
    """The `param.<key>` columns of a trials frame, in order."""
    return [c for c in trials.columns if is_param_column(c)]


def is_missing(value: Any) -> bool:
    """None, NaN, pandas NA or NaT: a cell that holds no value."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def plain(value: Any) -> Any:
    """A numpy / pandas scalar as the Python value it holds."""
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


def row_overrides(row: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """{dotted key: value} of a row's set parameters (missing ones and `skip` keys left out), sorted by key."""
    out = {}
    for column in sorted(k for k in row.keys() if is_param_column(k)):
        key, value = param_key(column), row[column]
        if key not in skip and not is_missing(value):
            out[key] = plain(value)
    return out


def objective_values(trials: pd.DataFrame) -> pd.Series:
    """Each row's value of its own objective column (float; NaN where missing)."""
    import pandas as pd

    if len(trials) == 0:
        return pd.Series([], dtype=float, index=trials.index)
    _check_objective_columns(trials)
    values = [row[row["objective"]] for _, row in trials.iterrows()]
    return pd.Series([math.nan if is_missing(v) else float(v) for v in values], index=trials.index, dtype=float)


def _check_objective_columns(trials: pd.DataFrame) -> None:
    for col in ("objective", "objective_mode"):
        if col not in trials.columns:
            raise KeyError(f"trials frame has no {col!r} column; read it through ResultsStore")
    absent = sorted(set(trials["objective"].dropna()) - set(trials.columns))
    if absent:
        raise KeyError(f"trials name objective column(s) {absent} that the frame lacks")


def signed_scores(trials: pd.DataFrame) -> pd.Series:
    """Objective values oriented so that larger is better (negated for mode min)."""
    values = objective_values(trials)
    sign = trials["objective_mode"].map({"max": 1.0, "min": -1.0})
    if sign.isna().any():
        bad = sorted(set(trials.loc[sign.isna(), "objective_mode"].astype(str)))
        raise ValueError(f"trials with objective_mode {bad}: expected one of {MODES}")
    return values * sign.astype(float)


def best_first(trials: pd.DataFrame, statuses: tuple[str, ...] = (COMPLETE,)) -> pd.DataFrame:
    """Rows with one of `statuses` and an objective value, best first by each row's own objective and mode;
    ties keep study and trial id order."""
    chosen = trials[trials["status"].isin(statuses)] if len(trials) else trials
    if len(chosen) == 0:
        return chosen.reset_index(drop=True)
    scores = signed_scores(chosen)
    ranked = chosen.assign(_score=scores)[scores.notna()]
    ranked = ranked.sort_values(["_score", "study", "trial_id"], ascending=[False, True, True], kind="stable")
    return ranked.drop(columns="_score").reset_index(drop=True)


def objective_parts(objective: str) -> tuple[str, str]:
    """(split, metric) of an objective column: `val_txt_r1` -> ("val", "txt_r1") (the epochs table's keys)."""
    split, metric = objective.split("_", 1)
    return split, metric


def objective_label(trials: pd.DataFrame) -> str:
    """`val txt_r1 (min)` for the objective all rows share; ValueError when rows disagree."""
    pairs = sorted({(o, m) for o, m in zip(trials["objective"], trials["objective_mode"])})
    if len(pairs) != 1:
        raise ValueError(f"trials have {len(pairs)} different objectives {pairs}; label one study at a time")
    objective, mode = pairs[0]
    split, metric = objective_parts(objective)
    return f"{split} {metric} ({mode})"


def study_objective(trials: pd.DataFrame) -> tuple[str, str]:
    """(objective column, mode) that every row of a one-study frame shares."""
    pairs = sorted({(o, m) for o, m in zip(trials["objective"], trials["objective_mode"])})
    if len(pairs) != 1:
        raise ValueError(f"trials have {len(pairs)} different objectives {pairs}; expected one study's rows")
    return pairs[0]


def complete_count(trials: pd.DataFrame) -> int:
    """How many rows of a trials frame are COMPLETE."""
    return int((trials["status"] == COMPLETE).sum()) if len(trials) else 0


def importances_withheld(n_complete: int, minimum: int | None = None) -> str | None:
    """Why parameter importances from `n_complete` COMPLETE trials are not shown (None from `minimum`, by default
    MIN_IMPORTANCE_TRIALS, on): the one wording of `harma study status` and the study driver's end-of-search
    line."""
    minimum = MIN_IMPORTANCE_TRIALS if minimum is None else minimum
    if n_complete >= minimum:
        return None
    return (f"not shown, since only {n_complete} trial{'' if n_complete == 1 else 's'} "
            f"{'is' if n_complete == 1 else 'are'} COMPLETE; they are shown from {minimum} COMPLETE trials on "
            "(a ranking of parameters from fewer mostly reflects noise)")
