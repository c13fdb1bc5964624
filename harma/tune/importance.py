"""Parameter importances of a search study, computed from its Optuna study and stored as a Parquet table.

`importances_of(optuna_study, name)` runs `optuna.importance.get_param_importances` with Optuna's PED-ANOVA
evaluator (deterministic, no scikit-learn) over the COMPLETE trials; with fewer than 2 of them, or when Optuna
refuses the study with a ValueError, the result carries the reason instead of values.  Other exceptions are
programming errors and propagate.  `record_importances(study, store)` does this for a study's own Optuna
storage and writes `<results>/importances/study=<name>/importances.parquet`; the study driver calls it when a
search ends and `harma study status` calls it from MIN_IMPORTANCE_TRIALS COMPLETE trials on (harma.results.trials).
Report pages read only that table.
"""
from __future__ import annotations

import warnings

import optuna

from harma.results.schema import Importances
from harma.results.store import ResultsStore
from harma.study.model import Study

MIN_TRIALS = 2


def importances_of(optuna_study: optuna.Study, name: str) -> Importances:
    """The importances of an Optuna study's parameters for its objective (or why there are none)."""
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    label = type(evaluator).__name__
    done = optuna_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < MIN_TRIALS:
        return Importances(name, {}, label, len(done),
                           reason=f"needs at least {MIN_TRIALS} COMPLETE trials, has {len(done)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            values = optuna.importance.get_param_importances(optuna_study, evaluator=evaluator)
    except ValueError as exc:  # Optuna's refusal of a study it cannot evaluate
        return Importances(name, {}, label, len(done), reason=f"Optuna: {exc}")
    if not values:
        return Importances(name, {}, label, len(done), reason="Optuna returned no importances")
    return Importances(name, {k: float(v) for k, v in values.items()}, label, len(done))


def record_importances(study: Study, store: ResultsStore) -> Importances:
    """Compute a search study's importances from its Optuna storage and write them to the results."""
    from harma.tune.searcher import open_optuna_study

    result = importances_of(open_optuna_study(study), study.name)
    store.write_importances(result)
    return result
