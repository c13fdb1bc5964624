"""Driver-side Tune callback that hands every trial's progress to harma's watchers as harma.progress events.

Tune calls `on_trial_result` in the driver with each epoch as the trial reports it, so the live view,
TensorBoard and MLflow see every epoch when it happens, not when the trial ends.  `EventRelay` turns Tune's
trial hooks into `TrialStarted`, `EpochReported`, `TrialRetried` and `TrialEnded` (COMPLETE, PRUNED or FAILED
by the same rule as the Parquet rows: `final_status`) and hands each to every sink.  A sink that raises (an
MLflow server gone away) is dropped with one line naming it, and the study goes on: watching a study never
stops it.  The runner sends `StudyBegan` and `StudyEnded` through `send` itself.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from ray.tune import Callback

from harma.epoch_record import curves
from harma.progress.events import EpochReported, Event, TrialEnded, TrialRetried, TrialStarted
from harma.progress.events import Sink
from harma.study.columns import best_objective, epoch_objective
from harma.study.model import Study
from harma.tune.callbacks import error_text
from harma.tune.records import FAILURE_KEY, final_status, is_epoch_result, trial_spec


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


class EventRelay(Callback):
    """Relays one driver's trial events to `sinks`; `echo` prints the line about a sink that failed."""

    def __init__(self, study: Study, sinks: Sequence[Sink], echo: Callable[..., None] = print,
                 clock: Callable[[], float] = time.time) -> None:
        self.study, self.sinks, self.echo, self.clock = study, list(sinks), echo, clock
        self.epoch_key, self.best_key = epoch_objective(study), best_objective(study)
        self.last: dict[str, dict] = {}
        self.retries: dict[str, int] = {}

    def __getstate__(self) -> dict:
        """Tune pickles its callbacks for Tuner.restore, which harma never uses (it resumes from Parquet): the
        sinks (open files, a terminal, a lock) stay behind."""
        return {**self.__dict__, "sinks": []}

    def send(self, event: Event) -> None:
        for sink in list(self.sinks):
            try:
                sink.handle(event)
            except Exception as exc:  # a watcher's failure must not stop the study
                self.sinks.remove(sink)
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no message"
                self.echo(f"[{self.study.name}] {sink.name} stopped: {type(exc).__name__}: {first}", flush=True)

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                self.echo(f"[{self.study.name}] {sink.name}: closing failed ({type(exc).__name__}: {exc})",
                          flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        spec = trial_spec(trial.config)
        self.send(TrialStarted(spec.trial_id, dict(spec.overrides), spec.arm, self.clock()))

    def on_trial_recover(self, iteration, trials, trial, **info):
        tid = trial_spec(trial.config).trial_id
        self.retries[tid] = self.retries.get(tid, 0) + 1
        self.send(TrialRetried(tid, self.retries[tid], self.clock()))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        tid = trial_spec(trial.config).trial_id
        if FAILURE_KEY in result or is_epoch_result(result):
            self.last[tid] = result
        if not is_epoch_result(result):
            return
        self.send(EpochReported(tid, int(result["epoch"]), int(result["planned_epochs"]), curves(result),
                                _number(result.get(self.epoch_key)), _number(result.get(self.best_key)),
                                _number(result.get("epoch_seconds")), self.clock()))

    def _end(self, trial, error: bool) -> None:
        tid = trial_spec(trial.config).trial_id
        last = self.last.get(tid)
        status = final_status(last, error)
        text = None
        if error or (last and FAILURE_KEY in last):
            text = (last[FAILURE_KEY] if last and FAILURE_KEY in last else error_text(trial)).splitlines()[0]
        self.send(TrialEnded(tid, status, self.clock(), text))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial, error=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial, error=True)
