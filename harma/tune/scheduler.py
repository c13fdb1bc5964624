"""The one Ray Tune scheduler of harma, whatever the study's `scheduler.type`: a FIFO scheduler that asks the
study's `harma.schedulers` policy about each epoch result, keyed by the harma trial id (not Ray's), and stops
the trial when the policy says STOP.  Results without an epoch (or without the objective) always continue.  On
`harma study resume` the policy's state (ASHA's rung records, Hyperband's per bracket) is rebuilt from the
study's Parquet epochs table, so a restarted trial is never counted twice.  With `scheduler.deterministic` the
policy is wrapped in `harma.schedulers.ordered`: a result it holds gets Tune's NOOP (the trial's thread waits
inside its report, keeping its slot), and when a later event releases it the held trial is continued (Tune's
`_schedule_trial_train`, what CONTINUE does) or stopped (`stop_trial`)."""
from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from harma.errors import StudyError
from harma.schedulers.base import STOP, Policy, is_early_stopping, observations_from_epochs
from harma.schedulers.ordered import OrderedDecisions, Released
from harma.schedulers.registry import build_policy
from harma.study.columns import epoch_objective
from harma.study.model import Study
from harma.tune.records import is_epoch_result, trial_spec

TUNE_CONTINUE = "_schedule_trial_train"    # the TuneController method CONTINUE calls (Ray 2.x)


def _tune_decision(decision: str) -> str:
    return TrialScheduler.STOP if decision == STOP else TrialScheduler.CONTINUE


class PolicyScheduler(FIFOScheduler):
    """Trials run in submission order; each epoch result of the objective `metric` goes to `policy` (through
    `OrderedDecisions` when `ordered`)."""

    def __init__(self, metric: str, policy: Policy, ordered: bool = False) -> None:
        super().__init__()
        self._metric_name = metric
        self.policy = policy
        self.ordered = OrderedDecisions(policy) if ordered else None
        self._trials: dict[str, Any] = {}          # harma trial id -> Tune trial (to act on released ones)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        tid = trial_spec(trial.config).trial_id
        self._trials[tid] = trial
        if self.ordered is not None:
            self.ordered.add(tid)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self._metric_name not in result or not is_epoch_result(result):
            return TrialScheduler.CONTINUE
        tid, epoch, value = trial_spec(trial.config).trial_id, int(result["epoch"]), float(result[self._metric_name])
        if self.ordered is None:
            return _tune_decision(self.policy.decide(tid, epoch, value))
        self._trials.setdefault(tid, trial)
        own = self._apply(tune_controller, self.ordered.report(tid, epoch, value), tid)
        return TrialScheduler.NOOP if own is None else own

    def _ended(self, tune_controller: Any, trial: Any) -> None:
        if self.ordered is not None:
            self._apply(tune_controller, self.ordered.finish(trial_spec(trial.config).trial_id), None)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._ended(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._ended(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._ended(tune_controller, trial)

    def _apply(self, tune_controller: Any, released: Released, own_id: str | None) -> str | None:
        """Continue or stop every released trial but `own_id`; return `own_id`'s Tune decision (None: held)."""
        own = None
        for tid, decision in released:
            if tid == own_id:
                own = _tune_decision(decision)
            elif decision == STOP:
                tune_controller.stop_trial(self._trials[tid])
            else:
                getattr(tune_controller, TUNE_CONTINUE)(self._trials[tid])
        return own

    def debug_string(self) -> str:
        return f"harma scheduler ({self.policy.describe()})"


def check_tune_continues() -> None:
    """A deterministic study needs Tune's controller to continue a held trial; fail before any trial starts
    when this Ray has no such method (API drift lands here, in harma.tune)."""
    from ray.tune.execution.tune_controller import TuneController

    if not callable(getattr(TuneController, TUNE_CONTINUE, None)):
        import ray

        raise StudyError(f"scheduler.deterministic needs ray.tune's TuneController.{TUNE_CONTINUE}, which Ray "
                           f"{ray.__version__} lacks; set scheduler.deterministic: false")


def tune_scheduler(study: Study, epochs: Any = None) -> PolicyScheduler:
    """The Tune scheduler of a study (its scheduler spec over its objective); `epochs` is the study's Parquet
    epochs frame on resume (None for a new run), read only by a scheduler that stops trials early."""
    obj = study.objective
    recorded = observations_from_epochs(epochs, obj.metric, obj.split) if is_early_stopping(study.scheduler) else []
    ordered = study.scheduler.deterministic and is_early_stopping(study.scheduler)
    if ordered:
        check_tune_continues()
    return PolicyScheduler(epoch_objective(study), build_policy(study.scheduler, obj.mode, recorded), ordered)
