"""Asynchronous successive halving (`scheduler: {type: asha, max_epochs, grace_period, reduction_factor}`):
one ladder of rungs (`harma.schedulers.rungs`) over every trial; a trial that reaches max_epochs stops."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping

from harma.schedulers.base import STOP, Decision, KeyChecker, Observation
from harma.schedulers.rungs import Rungs, parse_rung_fields, rung_epochs

KEYS = ("type", "max_epochs", "grace_period", "reduction_factor")


@dataclass(frozen=True)
class AshaSpec:
    type: ClassVar[str] = "asha"
    max_epochs: int                  # equals the run config's train.epochs
    grace_period: int = 1
    reduction_factor: float = 2.0
    deterministic: bool = False      # decisions in trial order (harma.schedulers.ordered)


class AshaPolicy:
    """ASHA's rung records, keyed by harma trial id, and its decisions."""

    def __init__(self, spec: AshaSpec, mode: str, recorded: Iterable[Observation] = ()) -> None:
        self.max_epochs = spec.max_epochs
        self.rungs = Rungs(rung_epochs(spec.max_epochs, spec.grace_period, spec.reduction_factor),
                           spec.reduction_factor, mode)
        for seen in recorded:
            self.rungs.load(seen)

    def decide(self, trial_id: str, epoch: int, value: float) -> Decision:
        if epoch >= self.max_epochs:
            return STOP
        return self.rungs.decide(trial_id, epoch, value)

    def shared_epochs(self, trial_id: str) -> frozenset[int]:
        return frozenset(self.rungs.records)

    def describe(self) -> str:
        return "ASHA: " + self.rungs.describe()


def parse(c: KeyChecker, key: str, value: Mapping[str, Any], base_epochs: int) -> AshaSpec:
    sch = c.mapping(key, value, KEYS, required=("type",))
    return AshaSpec(*parse_rung_fields(c, key, sch, base_epochs))


def to_data(spec: AshaSpec) -> dict[str, Any]:
    return {"type": spec.type, **dataclasses.asdict(spec)}


def policy(spec: AshaSpec, mode: str, recorded: Iterable[Observation]) -> AshaPolicy:
    return AshaPolicy(spec, mode, recorded)
