"""The one Ray Tune scheduler of harma, whatever the study's `scheduler.type`: a FIFO scheduler that asks the
study's `harma.schedulers` policy about each epoch result, keyed by the harma trial id (not Ray's), and stops
the trial when the policy says STOP.  Results without an epoch (or without the objective) always continue.  On
`harma study resume` the policy's state (ASHA's rung records, Hyperband's per bracket) is rebuilt from the
study's Parquet epochs table, so a restarted trial is never counted twice."""
from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from harma.schedulers.base import STOP, Policy, is_early_stopping, observations_from_epochs
from harma.schedulers.registry import build_policy
from harma.study.columns import epoch_objective
from harma.study.model import Study
from harma.tune.records import is_epoch_result, trial_spec


class PolicyScheduler(FIFOScheduler):
    """Trials run in submission order; each epoch result of the objective `metric` goes to `policy`."""

    def __init__(self, metric: str, policy: Policy) -> None:
        super().__init__()
        self._metric_name = metric
        self.policy = policy

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self._metric_name not in result or not is_epoch_result(result):
            return TrialScheduler.CONTINUE
        decision = self.policy.decide(trial_spec(trial.config).trial_id, int(result["epoch"]),
                                      float(result[self._metric_name]))
        return TrialScheduler.STOP if decision == STOP else TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"harma scheduler ({self.policy.describe()})"


def tune_scheduler(study: Study, epochs: Any = None) -> PolicyScheduler:
    """The Tune scheduler of a study (its scheduler spec over its objective); `epochs` is the study's Parquet
    epochs frame on resume (None for a new run), read only by a scheduler that stops trials early."""
    obj = study.objective
    recorded = observations_from_epochs(epochs, obj.metric, obj.split) if is_early_stopping(study.scheduler) else []
    return PolicyScheduler(epoch_objective(study), build_policy(study.scheduler, obj.mode, recorded))
