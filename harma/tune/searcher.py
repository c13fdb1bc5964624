"""A Ray Tune `Searcher` that drives an Optuna study with ask/tell, so ASHA-stopped trials become PRUNED.

Ray's own OptunaSearch tells Optuna every finished trial as COMPLETE with its last (truncated) score; then
TPE learns from low-fidelity results as if they were final.  Here each Tune result is reported to the Optuna
trial as an intermediate value at its epoch, and at the end the trial is told COMPLETE (reached its planned
epochs) with the value Parquet stores for it (the objective at the trial's best epoch, `best_<objective>`,
not the last epoch's), PRUNED (stopped early: Optuna keeps its last reported epoch) or FAIL.  The Optuna
study names its objective (`set_metric_names`), and each Optuna trial carries the user attributes
`harma_trial_id`, `arm` and `seed` that link it to its Parquet row.  On resume, Optuna trials that were
RUNNING when the driver died are handed out again first, with the same number and parameters.
"""
from __future__ import annotations

import warnings
from typing import Any

import optuna
from ray.tune.search import Searcher

from harma.results.trials import COMPLETE, FAILED, PRUNED
from harma.tune.columns import objective_column
from harma.tune.records import final_status, is_epoch_result
from harma.tune.space import make_sampler, study_storage, suggest_overrides
from harma.tune.study import Study


def search_trial_id(number: int) -> str:
    return f"trial-{number:04d}"


def open_optuna_study(study: Study) -> optuna.Study:
    """The study's Optuna study (created on first use), its objective named after the results column."""
    opened = optuna.create_study(study_name=study.name, storage=study_storage(study), sampler=make_sampler(study),
                                 direction=study.objective.direction, load_if_exists=True)
    with warnings.catch_warnings():  # set_metric_names is marked experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        opened.set_metric_names([objective_column(study)])
    return opened


def best_value(result: dict, metric: str) -> float:
    """The objective at the trial's best epoch, as Parquet records it (`best_<metric>` of the last result)."""
    key = f"best_{metric}"
    if key not in result:
        raise KeyError(f"trial result has no {key!r} (keys: {', '.join(sorted(result))}); "
                       "harma.tune.records.flatten_epoch reports it with every epoch")
    return float(result[key])


def unfinished_trials(optuna_study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in optuna_study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]


def finished_count(optuna_study: optuna.Study) -> int:
    return sum(1 for t in optuna_study.get_trials(deepcopy=False) if t.state.is_finished())


class OptunaAskTellSearcher(Searcher):
    """Suggests `{"trial": {...}}` configs from Optuna; tells Optuna COMPLETE / PRUNED / FAIL at the end."""

    def __init__(self, study: Study, metric: str, resume_unfinished: bool = False):
        super().__init__(metric=metric, mode=study.objective.mode)
        self.study = study
        self.optuna_study = open_optuna_study(study)
        self.base_values = study.base_values()
        self.pending = unfinished_trials(self.optuna_study) if resume_unfinished else []
        self.to_ask = max(0, (study.num_samples or 0) - finished_count(self.optuna_study) - len(self.pending)
                          - (0 if resume_unfinished else len(unfinished_trials(self.optuna_study))))
        self.live: dict[str, optuna.trial.Trial] = {}

    @property
    def total(self) -> int:
        """How many trials this run will start (re-run unfinished + new)."""
        return len(self.pending) + self.to_ask

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the Optuna storage is the searcher's state (resume reads it back)."""

    def restore(self, checkpoint_path: str) -> None:
        """See save()."""

    def _trial_config(self, trial: optuna.trial.Trial, overrides: dict[str, Any]) -> dict:
        seed = self.study.seeds[0]
        for key, value in (("harma_trial_id", search_trial_id(trial.number)), ("arm", None), ("seed", seed)):
            trial.set_user_attr(key, value)
        return {"trial": {"trial_id": search_trial_id(trial.number), "arm": None, "seed": seed,
                          "overrides": {**overrides, "train.seed": seed}, "optuna_number": trial.number,
                          "warm_start_from": trial.user_attrs.get("warm_start_from")}}

    def suggest(self, trial_id: str) -> dict | None:
        if self.pending:
            frozen = self.pending.pop(0)
            trial = optuna.trial.Trial(self.optuna_study, frozen._trial_id)
            overrides = dict(frozen.params)
        elif self.to_ask > 0:
            self.to_ask -= 1
            trial = self.optuna_study.ask()
            overrides = suggest_overrides(trial, self.study.search.space, self.base_values)
        else:
            return Searcher.FINISHED
        self.live[trial_id] = trial
        return self._trial_config(trial, overrides)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        trial = self.live.get(trial_id)
        if trial is not None:
            self._report(trial, result)

    def _report(self, trial: optuna.trial.Trial, result: dict | None) -> None:
        """Record the epoch's objective as an Optuna intermediate value (once per epoch)."""
        if result and is_epoch_result(result) and self.metric in result:
            step = int(result["epoch"])
            if step not in trial.storage.get_trial(trial._trial_id).intermediate_values:
                trial.report(float(result[self.metric]), step)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        trial = self.live.pop(trial_id, None)
        if trial is None:
            return
        status = final_status(result, error)
        if status != FAILED:  # Tune hands the result that made ASHA stop a trial only to on_trial_complete
            self._report(trial, result)
        if status == COMPLETE:
            self.optuna_study.tell(trial.number, best_value(result, self.metric))
        elif status == PRUNED:
            self.optuna_study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
        elif status == FAILED:
            self.optuna_study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
