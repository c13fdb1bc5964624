"""Asynchronous successive halving keyed by harma trial id, with rung records that survive a driver restart.

Rungs sit at grace_period * reduction_factor^k epochs (below max_epochs).  When a trial reports an epoch at or
past a rung it has not been recorded at, it is recorded there and stopped if its objective is below the
(1 - 1/reduction_factor) quantile of the values recorded before it (above it for mode=min); with nothing
recorded yet it continues.  Records are keyed by the harma trial id (not Ray's), so `harma study resume`
rebuilds them from the Parquet epochs table and a restarted trial is never counted twice.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from harma.tune.records import is_epoch_result, trial_spec


def rung_epochs(max_epochs: int, grace_period: int, reduction_factor: float) -> list[int]:
    rungs, epoch = [], float(grace_period)
    while epoch < max_epochs:
        rungs.append(int(round(epoch)))
        epoch *= reduction_factor
    return sorted(set(rungs))


class ResumableASHA(FIFOScheduler):
    def __init__(self, metric: str, mode: str, max_epochs: int, grace_period: int, reduction_factor: float,
                 recorded: Mapping[int, Mapping[str, float]] | None = None):
        super().__init__()
        self._metric_name, self.mode = metric, mode
        self.reduction_factor = reduction_factor
        self.max_epochs = max_epochs
        self.rungs: dict[int, dict[str, float]] = {r: {} for r in rung_epochs(max_epochs, grace_period,
                                                                                  reduction_factor)}
        for rung, values in (recorded or {}).items():
            if rung in self.rungs:
                self.rungs[rung].update(values)

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    def _cutoff(self, values: list[float]) -> float | None:
        if not values:
            return None
        q = (1 - 1 / self.reduction_factor) * 100
        return float(np.nanpercentile(values, q if self.mode == "max" else 100 - q))

    def decide(self, key: str, epoch: int, value: float) -> str:
        """CONTINUE or STOP for one result (pure bookkeeping; used by on_trial_result and by tests)."""
        if epoch >= self.max_epochs:
            return TrialScheduler.STOP
        for rung in sorted(self.rungs, reverse=True):
            if epoch < rung or key in self.rungs[rung]:
                continue
            cutoff = self._cutoff(list(self.rungs[rung].values()))
            self.rungs[rung][key] = value
            worse = cutoff is not None and (value < cutoff if self.mode == "max" else value > cutoff)
            return TrialScheduler.STOP if worse else TrialScheduler.CONTINUE
        return TrialScheduler.CONTINUE

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if self._metric_name not in result or not is_epoch_result(result):
            return TrialScheduler.CONTINUE
        return self.decide(trial_spec(trial.config).trial_id, int(result["epoch"]), float(result[self._metric_name]))

    def debug_string(self) -> str:
        return "ResumableASHA: " + ", ".join(f"rung {r}: {len(v)} recorded" for r, v in self.rungs.items())


def rungs_from_epochs(epochs, metric: str, split: str, trial_ids: set[str] | None = None) -> dict[int, dict[str, float]]:
    """{epoch: {trial_id: value}} from a Parquet epochs frame (columns trial_id, epoch, split, metric, value)."""
    if epochs is None or len(epochs) == 0:
        return {}
    rows = epochs[(epochs["split"] == split) & (epochs["metric"] == metric)]
    out: dict[int, dict[str, float]] = {}
    for row in rows.itertuples(index=False):
        if trial_ids is None or row.trial_id in trial_ids:
            out.setdefault(int(row.epoch), {})[str(row.trial_id)] = float(row.value)
    return out
