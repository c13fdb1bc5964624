"""The results columns a study fixes when it is loaded: every parameter it can set, typed, and its objective,
with the one owner of each name its objective goes by (the trials column, this epoch's and the best epoch's in
a reported result).

`study_columns(study, source=None)` collects the base overrides (`base.set`), the seed (`train.seed`), every
ablation arm's overrides and every searched key (a float range is a float column, an int range an int column,
categorical choices take their values' type); a replicate study adds the parameter columns of the study it
replicates (`source`, read from that study's Parquet files).  A key whose values cannot share one typed
column (say 64 and "auto") is a StudyError naming the study file and the key.  The result is what
`ResultsStore.write_trial` writes every trial of the study under, so all its files have the same columns.
"""
from __future__ import annotations

from collections.abc import Mapping

from harma.epoch_record import best_metric_key, metric_key
from harma.results.schema import OBJECTIVE_COLUMNS, RecordError, StudyColumns, merge_kinds, param_kind, trial_column
from harma.terms import SEED_KEY
from harma.study.model import Study
from harma.errors import StudyError


def objective_column(study: Study) -> str:
    """The trials column (Parquet) of the study's objective, e.g. `val_r_mean`: its value at the trial's best
    epoch, what the study ranks trials by."""
    return trial_column(study.objective.split, study.objective.metric)


def epoch_objective(study: Study) -> str:
    """The key of THIS epoch's objective in a trial's reported result (`val_r_mean`): Tune's metric, what ASHA
    stops on and Optuna's intermediate value."""
    return metric_key(study.objective.split, study.objective.metric)


def best_objective(study: Study) -> str:
    """The key of the BEST epoch's objective so far in a trial's reported result (`best_val_r_mean`): what
    Optuna is told for a COMPLETE trial and what the trials row records in `objective_column`."""
    return best_metric_key(study.objective.split, study.objective.metric)


def _search_kinds(study: Study) -> dict[str, list[str | None]]:
    kinds: dict[str, list[str | None]] = {}
    for key, spec in (study.search.space.items() if study.search else ()):
        if spec.type == "float":
            kinds[key] = ["float"]
        elif spec.type == "int":
            kinds[key] = ["int"]
        else:
            kinds[key] = [param_kind(v) for v in spec.choices]
    return kinds


def study_columns(study: Study, source: Mapping[str, str] | None = None) -> StudyColumns:
    """The StudyColumns of `study`; `source` is {dotted key: type} of a replicate's source study."""
    kinds: dict[str, list[str | None]] = {}

    def add(key: str, kind: str | None) -> None:
        kinds.setdefault(key, []).append(kind)

    for key, value in study.base_set.items():
        add(key, param_kind(value))
    add(SEED_KEY, "int")
    for overrides in study.arms.values():
        for key, value in overrides.items():
            add(key, param_kind(value))
    for key, found in _search_kinds(study).items():
        for kind in found:
            add(key, kind)
    for key, kind in (source or {}).items():
        add(key, kind)
    objective = objective_column(study)
    if objective not in OBJECTIVE_COLUMNS:
        raise StudyError(f"{study.source}: objective.metric: {study.objective.metric!r} has no results column "
                         f"{objective}; expected one of {', '.join(c.split('_', 1)[1] for c in OBJECTIVE_COLUMNS[:7])}")
    try:
        params = {key: merge_kinds(key, found) for key, found in sorted(kinds.items())}
        return StudyColumns(study.name, params, objective, study.objective.mode)
    except RecordError as exc:
        raise StudyError(f"{study.source}: {exc}") from None
