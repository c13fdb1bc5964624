"""The events a study driver hands its watchers (the live view, TensorBoard, MLflow), as typed records.

`StudyBegan` opens a run of the driver (what it plans, and the trials earlier drivers finished), then per trial
`TrialStarted`, one `EpochReported` per epoch as the trial reports it (a resumed or retried trial reports its
recorded epochs again), `TrialRetried` when Tune restarts it, and `TrialEnded`; `StudyEnded` closes the run.
Every event carries `at`, the wall-clock time it happened (seconds since the epoch), so whatever consumes them
is a pure function of the events.  `Sink` is what consumes them: `handle(event)` and `close()`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Union


@dataclass(frozen=True)
class FinishedTrial:
    """A trial an earlier driver finished (its row in Parquet): its status and objective value at its best epoch."""
    trial_id: str
    status: str
    objective: float | None


@dataclass(frozen=True)
class StudyBegan:
    name: str
    kind: str
    objective: str                    # the objective's column, e.g. val_r_mean
    mode: str                         # max | min
    planned: int                      # trials in the study, those finished earlier included
    to_run: int                       # trials this driver starts
    concurrency: int
    epochs_per_trial: int
    early_stopping: bool              # a scheduler may stop trials before epochs_per_trial
    at: float
    earlier: tuple[FinishedTrial, ...] = ()


@dataclass(frozen=True)
class TrialStarted:
    trial_id: str
    params: Mapping[str, Any]         # the trial's dotted overrides of the base config (train.seed included)
    arm: str | None
    at: float


@dataclass(frozen=True)
class EpochReported:
    trial_id: str
    epoch: int
    planned_epochs: int
    curves: Mapping[str, Mapping[str, float]]   # {val|test|train: {metric: value}}, as the epochs table holds them
    objective: float | None           # this epoch's objective value
    best: float | None                # the objective at the trial's best epoch so far
    epoch_seconds: float | None
    at: float


@dataclass(frozen=True)
class TrialRetried:
    trial_id: str
    retry: int
    at: float


@dataclass(frozen=True)
class TrialEnded:
    trial_id: str
    status: str                       # COMPLETE | PRUNED | FAILED
    at: float
    error: str | None = None          # the error's first line, for FAILED


@dataclass(frozen=True)
class StudyEnded:
    at: float
    interrupted: str | None = None    # the signal that stopped the driver, if one did


Event = Union[StudyBegan, TrialStarted, EpochReported, TrialRetried, TrialEnded, StudyEnded]


class Sink(Protocol):
    """Something that consumes a driver's events: the console, a TensorBoard writer, an MLflow logger."""
    name: str

    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...
