"""The live view's state, built from a driver's events and nothing else (pure: no clock, no I/O, no Ray).

`Progress(began)` starts from `StudyBegan` (the plan, and the trials earlier drivers finished, whose statuses
count and whose objective values compete for the best); `apply(event)` folds in each later event and says
whether it is news (an epoch this driver has not seen for that trial, a retry, an end), so the line printer
writes at most one line per trial per epoch even when a resumed or retried trial reports its epochs again.
Rows are this driver's trials; `counts()`, `best()`, `elapsed(now)` and `left(now)` summarise the study.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from harma.progress.events import (EpochReported, Event, StudyBegan, StudyEnded, TrialEnded, TrialRetried,
                                   TrialStarted)

RUNNING, COMPLETE, PRUNED, FAILED, PENDING = "RUNNING", "COMPLETE", "PRUNED", "FAILED", "pending"
COUNT_ORDER = (RUNNING, COMPLETE, PRUNED, FAILED, PENDING)
SHORT_CONFIG_CHARS = 40


@dataclass
class TrialRow:
    """One trial of this driver as the view shows it."""
    trial_id: str
    config: str                        # its configuration in short (arm, or searched key=value pairs)
    status: str = RUNNING
    epoch: int = 0                     # the last epoch reported
    planned: int | None = None
    last: float | None = None          # this epoch's objective
    best: float | None = None          # the objective at its best epoch so far
    epochs_per_min: float | None = None
    retries: int = 0


def _short_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def short_config(params: Mapping[str, Any], arm: str | None) -> str:
    """`arm` when the trial has one, else `lr=0.0032 gate_init=0.41` (each key's last part; the seed left out
    unless nothing else is set), cut to SHORT_CONFIG_CHARS."""
    if arm:
        text = arm
    else:
        shown = {k: v for k, v in params.items() if k != "train.seed"} or dict(params)
        text = " ".join(f"{k.rsplit('.', 1)[-1]}={_short_value(v)}" for k, v in sorted(shown.items()))
    return text if len(text) <= SHORT_CONFIG_CHARS else text[:SHORT_CONFIG_CHARS - 1] + "…"


class Progress:
    """The state of the live view of one driver's run of a study."""

    def __init__(self, began: StudyBegan) -> None:
        self.began = began
        self.rows: dict[str, TrialRow] = {}
        self.seen: dict[str, int] = {}                 # trial id -> highest epoch seen by this driver
        self.seconds, self.epochs = 0.0, 0              # reported epoch time, for the estimate
        self.ended_at: float | None = None

    # folding events ---------------------------------------------------------------------------------------
    def apply(self, event: Event) -> bool:
        """Fold `event` in; True when it is news for a line printer."""
        if isinstance(event, TrialStarted):
            return self._started(event)
        if isinstance(event, EpochReported):
            return self._epoch(event)
        if isinstance(event, TrialRetried):
            self._row(event.trial_id).retries = event.retry
            return True
        if isinstance(event, TrialEnded):
            self._row(event.trial_id).status = event.status
            return True
        if isinstance(event, StudyEnded):
            self.ended_at = event.at
        return False

    def _row(self, trial_id: str) -> TrialRow:
        if trial_id not in self.rows:
            self.rows[trial_id] = TrialRow(trial_id, "")
        return self.rows[trial_id]

    def _started(self, event: TrialStarted) -> bool:
        row = self._row(event.trial_id)
        row.config, row.status = short_config(event.params, event.arm), RUNNING
        return False

    def _epoch(self, event: EpochReported) -> bool:
        row = self._row(event.trial_id)
        row.epoch, row.planned, row.last, row.best = event.epoch, event.planned_epochs, event.objective, event.best
        if event.epoch_seconds:
            row.epochs_per_min = 60.0 / event.epoch_seconds
        if event.epoch <= self.seen.get(event.trial_id, 0):
            return False
        self.seen[event.trial_id] = event.epoch
        if event.epoch_seconds:
            self.seconds, self.epochs = self.seconds + event.epoch_seconds, self.epochs + 1
        return True

    # summaries ----------------------------------------------------------------------------------------------
    def running(self) -> list[TrialRow]:
        return [r for _, r in sorted(self.rows.items()) if r.status == RUNNING]

    def counts(self) -> dict[str, int]:
        """{status: trials} over earlier drivers' trials and this driver's, with `pending` (not started yet)."""
        counts = dict.fromkeys(COUNT_ORDER, 0)
        for trial in self.began.earlier:
            counts[trial.status] = counts.get(trial.status, 0) + 1
        for row in self.rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        counts[PENDING] = max(0, self.began.to_run - len(self.rows))
        return counts

    def best(self) -> tuple[float, str] | None:
        """(objective value, trial id) of the best trial so far, earlier drivers' COMPLETE and PRUNED trials and
        this driver's trials that did not fail (at their best epoch so far) alike."""
        candidates = [(t.objective, t.trial_id) for t in self.began.earlier
                      if t.status in (COMPLETE, PRUNED) and t.objective is not None]
        candidates += [(r.best, r.trial_id) for r in self.rows.values() if r.status != FAILED and r.best is not None]
        if not candidates:
            return None
        sign = 1.0 if self.began.mode == "max" else -1.0
        return max(candidates, key=lambda c: (sign * c[0], _reverse(c[1])))

    def elapsed(self, now: float) -> float:
        return max(0.0, (self.ended_at or now) - self.began.at)

    def remaining_epochs(self) -> int:
        """Epochs left if no trial stops early: the running trials' rest and every trial not started yet."""
        running = sum(max(0, (r.planned or self.began.epochs_per_trial) - r.epoch) for r in self.running())
        return running + self.counts()[PENDING] * self.began.epochs_per_trial

    def left(self) -> float | None:
        """Seconds left at the mean epoch time seen so far over the trials that run at once (an upper bound
        when a scheduler stops trials early); None before the first epoch."""
        if not self.epochs:
            return None
        slots = max(1, min(self.began.concurrency, self.began.to_run))
        return self.remaining_epochs() * (self.seconds / self.epochs) / slots


def _reverse(trial_id: str) -> tuple[int, ...]:
    """A key that prefers the smaller trial id among equal values (max() keeps the largest key)."""
    return tuple(-ord(c) for c in trial_id)
