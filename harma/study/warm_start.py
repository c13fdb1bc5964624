"""Warm start: seed a new search with the best COMPLETE trials of a finished study (searched RSITMD, now RSICD).

`search.warm_start: {study: NAME, top_k: N}` takes NAME's trials best first (`harma.results.trials.best_first`,
by that study's own objective) from the same results root; the searcher (harma.tune.searcher.enqueue_warm)
enqueues the parameters of the first N into the new Optuna study, each marked with the user attribute `warm_start_from` (`NAME/<trial id>`), which the study
driver records in Parquet.  A source parameter the new space does not search is refused with one StudyError,
unless it equals the new study's base value (the same config either way); a value outside the new space's
range or choices is refused the same way.  The seed (`train.seed`) is the new study's own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from harma.results.store import ResultsStore
from harma.results.trials import best_first, row_overrides
from harma.terms import SEED_KEY
from harma.study.model import ParamSpec, Study
from harma.errors import StudyError

ATTR = "warm_start_from"


@dataclass(frozen=True)
class WarmTrial:
    source: str                      # "<study>/<trial id>"
    params: dict[str, Any]           # {searched key: value}, as Optuna gets it


def _fit(spec: ParamSpec, value: Any) -> Any:
    """The value as the new space's distribution holds it, or None if it does not fit."""
    if spec.type == "categorical":
        same = [c for c in spec.choices if c == value and isinstance(c, bool) == isinstance(value, bool)]
        return same[0] if same else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if spec.type == "int":
        if float(value) != int(value) or (int(value) - spec.low) % (spec.step or 1):
            return None
        value = int(value)
    return value if spec.low <= value <= spec.high else None


def warm_trials(study: Study, source_trials, base_values: Mapping[str, Any]) -> list[WarmTrial]:
    """The enqueued parameters of the source's top_k best COMPLETE trials (StudyError when one does not fit)."""
    warm = study.search.warm_start
    at = f"{study.source}: search.warm_start"
    chosen = best_first(source_trials).head(warm.top_k)
    if len(chosen) == 0:
        raise StudyError(f"{at}: study {warm.study!r} has no COMPLETE trials to start from")
    out = []
    for row in chosen.to_dict("records"):
        tid, params = row["trial_id"], {}
        for key, value in row_overrides(row, skip=(SEED_KEY,)).items():
            spec = study.search.space.get(key)
            if spec is None:
                if key in base_values and base_values[key] == value:
                    continue
                raise StudyError(f"{at}: trial {warm.study}/{tid} sets {key}={value!r}, which this study neither "
                                 f"searches nor has as its base value ({base_values.get(key)!r}); add {key} to "
                                 f"search.space or warm-start from another study")
            fitted = _fit(spec, value)
            if fitted is None:
                allowed = list(spec.choices) if spec.type == "categorical" else f"[{spec.low}, {spec.high}]"
                raise StudyError(f"{at}: trial {warm.study}/{tid} has {key}={value!r}, outside this study's "
                                 f"search.space.{key} ({allowed})")
            params[key] = fitted
        out.append(WarmTrial(f"{warm.study}/{tid}", params))
    return out


def plan_warm_start(study: Study, store: ResultsStore) -> list[WarmTrial]:
    """The warm-start trials of a search study (none without `search.warm_start`), checked before Ray starts."""
    if study.search is None or study.search.warm_start is None:
        return []
    return warm_trials(study, store.read_trials(study.search.warm_start.study), study.base_values())

