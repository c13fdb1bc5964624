"""A Ray Tune `Searcher` that drives an Optuna study with ask/tell, so ASHA-stopped trials become PRUNED.

Ray's own OptunaSearch tells Optuna every finished trial as COMPLETE with its last (truncated) score; then
TPE learns from low-fidelity results as if they were final.  Here each Tune result is reported to the Optuna
trial as an intermediate value at its epoch, and at the end the trial is told COMPLETE (reached its planned
epochs) with the value Parquet stores for it (the objective at the trial's best epoch, `best_objective`,
not the last epoch's), PRUNED (stopped early: Optuna keeps its last reported epoch) or FAIL.  The Optuna
study names its objective (`set_metric_names`), and each Optuna trial carries the user attributes
`harma_trial_id`, `arm` and `seed` that link it to its Parquet row.  On resume, Optuna trials that were
RUNNING when the driver died are handed out again first, with the same number and parameters; a FAILED trial
that `harma study resume` retries becomes a new Optuna trial with the same parameters that carries the old
harma trial id, and the sampler is reseeded from the number of trials asked so far, so a resumed search never
replays the draws of the first driver.  With `scheduler.deterministic` (`TellOrder`) Optuna is asked and told in
trial order, so a re-run of a seeded study asks the same trials whatever order their results came in.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any, Callable, Iterator

import optuna
from ray.tune.search import Searcher

from harma.results.trials import COMPLETE, FAILED, PRUNED
from harma.tune import quiet
from harma.study.columns import best_objective, objective_column
from harma.tune.records import TRIAL_KEY, TrialSpec, final_status, is_epoch_result
from harma.tune.space import make_sampler, study_storage, suggest_overrides
from harma.study.model import Study
from harma.terms import SEED_KEY
from harma.study.warm_start import ATTR as WARM_ATTR
from harma.study.warm_start import WarmTrial


def search_trial_id(number: int) -> str:
    return f"trial-{number:04d}"


@contextlib.contextmanager
def _optuna_info_hidden() -> Iterator[None]:
    """Optuna's logger at WARNING inside the block, unless a driver's `--verbose` wants its INFO lines."""
    logger = logging.getLogger("optuna")
    saved = logger.level
    if not quiet.verbose():
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(saved)


def open_optuna_study(study: Study) -> optuna.Study:
    """The study's Optuna study (created on first use), its objective named after the results column; Optuna's
    info line "Using an existing study" is left out unless a driver runs with `--verbose` (harma.tune.quiet), its
    warnings kept."""
    with _optuna_info_hidden():
        opened = optuna.create_study(study_name=study.name, storage=study_storage(study),
                                     sampler=make_sampler(study), direction=study.objective.direction,
                                     load_if_exists=True)
    with warnings.catch_warnings():  # set_metric_names is marked experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        opened.set_metric_names([objective_column(study)])
    opened.sampler = make_sampler(study, asked=len(opened.get_trials(deepcopy=False)))
    return opened


def best_value(result: dict, key: str) -> float:
    """The objective at the trial's best epoch, as Parquet records it: `result[key]`, key = best_objective(study)."""
    if key not in result:
        raise KeyError(f"trial result has no {key!r} (keys: {', '.join(sorted(result))}); "
                       "harma.epoch_record.EpochRecord.flat reports it with every epoch")
    return float(result[key])


def harma_id(trial: optuna.trial.FrozenTrial | optuna.trial.Trial) -> str:
    """The harma trial id an Optuna trial runs as: its own number's id, or the id of the FAILED trial it
    retries (an Optuna trial cannot be reopened, so a retry is a new Optuna trial carrying the old id)."""
    return trial.user_attrs.get("harma_trial_id") or search_trial_id(trial.number)


Trials = list[optuna.trial.FrozenTrial]    # an Optuna study's trials, in number order (get_trials)


def unfinished_trials(trials: Trials) -> Trials:
    return [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]


def finished_ids(trials: Trials) -> set[str]:
    """Harma trial ids with a finished Optuna trial (a retried id counts once)."""
    return {harma_id(t) for t in trials if t.state.is_finished()}


def latest_states(trials: Trials) -> dict[str, str]:
    """{harma trial id: Optuna state name of its latest Optuna trial}."""
    return {harma_id(t): t.state.name for t in trials}


def enqueue_retries(optuna_study: optuna.Study, trials: Trials, retry: set[str]) -> None:
    """Queue a new Optuna trial with the parameters of each FAILED trial in `retry` (harma ids), carrying its
    id, unless one is already waiting from an earlier resume."""
    waiting = {harma_id(t) for t in trials if t.state == optuna.trial.TrialState.WAITING}
    failed = {harma_id(t): t for t in trials if t.state == optuna.trial.TrialState.FAIL}
    for tid in sorted(retry - waiting):
        if tid in failed:
            optuna_study.enqueue_trial(dict(failed[tid].params), user_attrs={"harma_trial_id": tid})


def enqueue_warm(optuna_study: optuna.Study, trials: list[WarmTrial]) -> None:
    """Put warm-start trials first in the Optuna study's queue, each marked with where its parameters come from."""
    for t in trials:
        optuna_study.enqueue_trial(t.params, user_attrs={WARM_ATTR: t.source})


def tell_recorded(optuna_study: optuna.Study, rows: list[dict], curves: dict[str, dict[int, float]],
                  column: str) -> list[str]:
    """Tell Optuna, for each RUNNING Optuna trial whose Parquet row (`rows`) is finished, what Parquet recorded:
    its epochs' objective (`curves`: {harma id: {epoch: value}}) as intermediate values, then COMPLETE with the
    row's `column` value, PRUNED or FAIL (a deterministic driver may die between the two; a trial resumed
    instead would train past the epoch it was stopped at).  Returns the harma ids told."""
    states = {COMPLETE: optuna.trial.TrialState.COMPLETE, PRUNED: optuna.trial.TrialState.PRUNED,
              FAILED: optuna.trial.TrialState.FAIL}
    finished = {r["trial_id"]: r for r in rows if r["status"] in states}
    told = []
    for frozen in unfinished_trials(optuna_study.get_trials(deepcopy=False)):
        row = finished.get(harma_id(frozen))
        if row is None:
            continue
        trial = optuna.trial.Trial(optuna_study, frozen._trial_id)
        for epoch, value in sorted(curves.get(row["trial_id"], {}).items()):
            trial.report(value, epoch)
        if row["status"] == COMPLETE:
            optuna_study.tell(frozen.number, float(row[column]))
        else:
            optuna_study.tell(frozen.number, state=states[row["status"]])
        told.append(row["trial_id"])
    return told


Teller = Callable[[str, "dict | None", bool], None]     # tell(Tune trial id, its last result, error)


class TellOrder:
    """Ask and tell in trial order (a deterministic study): trial k (0-based, in ask order) is asked only once
    trials 0 .. k - concurrency are told, in that order, and no later one, so at every ask TPE sees the same
    finished trials (with their values) and the same running ones (its constant liar), however results came."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, int(concurrency))
        self.asked: list[str] = []                                  # Tune trial ids, in ask order
        self.told = 0                                               # how many of `asked` are told
        self.finals: dict[str, tuple[dict | None, bool]] = {}       # ended, not told yet: (last result, error)
        self.results: dict[str, list[dict]] = {}                    # epoch results not told yet

    def tell_through(self, count: int, tell: Teller) -> bool:
        """Tell the first `count` asked trials that are not told yet, in order, stopping at one still running;
        True when all `count` are told."""
        while self.told < min(count, len(self.asked)) and self.asked[self.told] in self.finals:
            tid = self.asked[self.told]
            tell(tid, *self.finals.pop(tid))
            self.told += 1
        return self.told >= count

    def may_ask(self, tell: Teller) -> bool:
        """Whether the next trial may be asked now (telling what it needs told first)."""
        return self.tell_through(len(self.asked) - self.concurrency + 1, tell)


class OptunaAskTellSearcher(Searcher):
    """Suggests `{TRIAL_KEY: TrialSpec}` configs from Optuna; tells Optuna COMPLETE / PRUNED / FAIL at the end."""

    def __init__(self, study: Study, metric: str, resume_unfinished: bool = False, retry: set[str] = frozenset(),
                 concurrency: int = 1):
        """`resume_unfinished`: hand out the RUNNING Optuna trials again first; `retry`: harma ids of FAILED
        trials to run again (with their parameters, under their ids) before asking new ones; `concurrency`: the
        study's max_concurrent, which a deterministic study (`scheduler.deterministic`) asks and tells by."""
        super().__init__(metric=metric, mode=study.objective.mode)
        self.order = TellOrder(concurrency) if study.scheduler.deterministic else None
        self.study = study
        self.optuna_study = open_optuna_study(study)
        self.base_values = study.base_values()
        trials = self.optuna_study.get_trials(deepcopy=False)
        enqueue_retries(self.optuna_study, trials, set(retry))    # WAITING: counted among the asks below
        running = unfinished_trials(trials)
        self.pending = running if resume_unfinished else []
        done = finished_ids(trials) - set(retry)
        self.to_ask = max(0, (study.num_samples or 0) - len(done | {harma_id(t) for t in running}))
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
        seed, tid = self.study.seeds[0], harma_id(trial)
        for key, value in (("harma_trial_id", tid), ("arm", None), ("seed", seed)):
            trial.set_user_attr(key, value)
        return {TRIAL_KEY: TrialSpec(tid, seed, {**overrides, SEED_KEY: seed}, optuna_number=trial.number,
                                     warm_start_from=trial.user_attrs.get(WARM_ATTR))}

    def suggest(self, trial_id: str) -> dict | None:
        if not self.pending and self.to_ask <= 0:
            return Searcher.FINISHED
        if self.order is not None:
            if not self.order.may_ask(self._tell):
                return None                   # Tune asks again after the next trial ends
            self.order.asked.append(trial_id)
        if self.pending:
            frozen = self.pending.pop(0)
            trial = optuna.trial.Trial(self.optuna_study, frozen._trial_id)
            overrides = dict(frozen.params)
        else:
            self.to_ask -= 1
            trial = self.optuna_study.ask()
            overrides = suggest_overrides(trial, self.study.search.space, self.base_values)
        self.live[trial_id] = trial
        return self._trial_config(trial, overrides)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        trial = self.live.get(trial_id)
        if trial is None:
            return
        if self.order is not None:            # told with the trial, in trial order
            self.order.results.setdefault(trial_id, []).append(dict(result))
        else:
            self._report(trial, result)

    def _report(self, trial: optuna.trial.Trial, result: dict | None) -> None:
        """Record the epoch's objective as an Optuna intermediate value (once per epoch)."""
        if result and is_epoch_result(result) and self.metric in result:
            step = int(result["epoch"])
            if step not in trial.storage.get_trial(trial._trial_id).intermediate_values:
                trial.report(float(result[self.metric]), step)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.live:
            return
        if self.order is None:
            self._tell(trial_id, result, error)
            return
        self.order.finals[trial_id] = (result, error)
        if not self.pending and self.to_ask <= 0:   # nothing left to ask: tell all that ended, in trial order
            self.order.tell_through(len(self.order.asked), self._tell)

    def _tell(self, trial_id: str, result: dict | None, error: bool) -> None:
        """Tell Optuna the trial's intermediate values (buffered in deterministic mode) and its final state."""
        trial = self.live.pop(trial_id)
        for epoch_result in self.order.results.pop(trial_id, []) if self.order is not None else []:
            self._report(trial, epoch_result)
        status = final_status(result, error)
        if status != FAILED:  # Tune hands the result that made ASHA stop a trial only to on_trial_complete
            self._report(trial, result)
        if status == COMPLETE:
            self.optuna_study.tell(trial.number, best_value(result, best_objective(self.study)))
        elif status == PRUNED:
            self.optuna_study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
        elif status == FAILED:
            self.optuna_study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
