"""What each arm of an ablation or replicate study is: its overrides on top of the study's base config, and
how it differs from the reference arm.

An arm's overrides are read from its trials' `param.<key>` columns (every trial of an arm carries its arm's
overrides plus its own `train.seed`, which is left out here); when a study file is known its `arms:` mapping
is used instead, since it is what the user wrote.  A key one arm sets and the other leaves alone compares
against the base config's value when it is known, shown as `(base)` otherwise.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from harma.report.frames import param_columns
from harma.results.overrides import format_value
from harma.report.spec import StudySpec
from harma.results.trials import param_column, param_key
from harma.terms import SEED_KEY

BASE = "(base)"


def arm_overrides(trials: pd.DataFrame, arms: list[str], spec: StudySpec | None = None
                  ) -> dict[str, dict[str, Any]]:
    """{arm: {dotted key: value}} without `train.seed`; from the study file where it defines the arm."""
    out = {}
    cols = [c for c in param_columns(trials) if c != param_column(SEED_KEY)]
    for arm in arms:
        if spec is not None and arm in spec.arms:
            out[arm] = {k: v for k, v in spec.arms[arm].items() if k != SEED_KEY}
            continue
        rows = trials[trials["arm_label"] == arm]
        values: dict[str, Any] = {}
        for c in cols:
            seen = rows[c].dropna()
            if len(seen):
                distinct = seen.astype(str).unique()
                values[param_key(c)] = _plain(seen.iloc[0]) if len(distinct) == 1 else "(varies by trial)"
        out[arm] = values
    return out


def arm_definitions(overrides: Mapping[str, Mapping[str, Any]], reference: str,
                    base_values: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per arm: `overrides` (KEY=VALUE on the base config) and `versus reference` (each key whose
    value differs from the reference arm's, as `key: reference value → arm value`)."""
    ref = overrides.get(reference, {})
    rows = []
    for arm, values in overrides.items():
        own = " ".join(f"{k}={format_value(v)}" for k, v in sorted(values.items())) or "none (the base config)"
        if arm == reference:
            diff = "reference arm"
        elif reference not in overrides:
            diff = f"no reference arm '{reference}'"
        else:
            changes = []
            for key in sorted(set(values) | set(ref)):
                a, r = _value(values, key, base_values), _value(ref, key, base_values)
                if a != r:
                    changes.append(f"{key}: {r} → {a}")
            diff = "; ".join(changes) or "identical overrides"
        rows.append({"arm": arm, "overrides": own, "versus reference": diff})
    return pd.DataFrame(rows, columns=["arm", "overrides", "versus reference"])


def _value(values: Mapping[str, Any], key: str, base: Mapping[str, Any] | None) -> str:
    if key in values:
        return format_value(values[key])
    if base is not None and key in base:
        return f"{format_value(base[key])} (base)"
    return BASE


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value
