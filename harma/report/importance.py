"""Parameter importances for a search study page, read from the results' Parquet importances table.

harma.tune computes them from the study's Optuna storage (when a search ends, and on `harma study status`)
and writes `<results>/importances/study=<name>/importances.parquet`; the report never opens Optuna.  The
result is a DataFrame[param, importance] (descending) and a description naming the evaluator and the number
of COMPLETE trials behind it, or None and the reason there are none.
"""
from __future__ import annotations

import pandas as pd


def param_importances(results_root: str | None, study: str) -> tuple[pd.DataFrame | None, str]:
    """(DataFrame[param, importance] sorted descending, description) or (None, why it is unavailable)."""
    from harma.results.store import ResultsStore

    if not results_root:
        return None, "no results root was given, so importances are unavailable"
    table = ResultsStore(results_root).read_importances(study)
    if table.empty:
        return None, (f"importances are unavailable: none were computed for '{study}' yet (they are written "
                      f"when a search ends, and by `harma study status {study}`)")
    if table["param"].isna().all():
        return None, f"importances are unavailable: {table['reason'].iloc[0]}"
    first = table.iloc[0]
    frame = table[["param", "importance"]].reset_index(drop=True)
    return frame, (f"optuna.importance.get_param_importances with {first['evaluator']} over the "
                   f"{first['n_trials']} COMPLETE trials of study '{study}', computed "
                   f"{first['computed_at']:%Y-%m-%d %H:%M} UTC (importances sum to 1)")
