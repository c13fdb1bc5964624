"""Asynchronous successive halving on one ladder of rungs, shared by ASHA (one ladder) and Hyperband (one ladder
per bracket), and the rung settings both read from a study file.  Rungs sit at grace_period * reduction_factor**k epochs (k from `skip` on, rounded, below max_epochs).  When a
trial reports an epoch at or past a rung it has not been recorded at, it is recorded there and stopped if its
value is below the (1 - 1/reduction_factor) quantile of the values recorded there before it (above it for mode
min); with nothing recorded yet it continues.  Records are keyed by the harma trial id, so observations read
back from the epochs table rebuild them and a restarted trial is never counted twice.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from harma.terms import MODES
from harma.schedulers.base import CONTINUE, STOP, Decision, KeyChecker, Observation



def rung_epochs(max_epochs: int, grace_period: float, reduction_factor: float, skip: int = 0) -> list[int]:
    """Rung epochs below max_epochs: grace_period * reduction_factor**k for k >= skip, rounded, distinct."""
    rungs, epoch = [], float(grace_period)
    for _ in range(skip):
        epoch *= reduction_factor
    while epoch < max_epochs:
        rungs.append(int(round(epoch)))
        epoch *= reduction_factor
    return sorted(set(rungs))


class Rungs:
    """The records of one ladder of rungs ({rung epoch: {trial id: value}}) and ASHA's rule over them."""

    def __init__(self, epochs: Sequence[int], reduction_factor: float, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        self.reduction_factor, self.mode = reduction_factor, mode
        self.records: dict[int, dict[str, float]] = {r: {} for r in sorted(epochs)}

    def load(self, seen: Observation) -> None:
        """Record a value read back from the epochs table (only at a rung epoch)."""
        if seen.epoch in self.records:
            self.records[seen.epoch][seen.trial_id] = seen.value

    def _cutoff(self, values: list[float]) -> float | None:
        if not values:
            return None
        q = (1 - 1 / self.reduction_factor) * 100
        return float(np.nanpercentile(values, q if self.mode == "max" else 100 - q))

    def decide(self, trial_id: str, epoch: int, value: float) -> Decision:
        """Record the trial at the highest rung it reached and has no record at, and stop it if it falls below
        that rung's cutoff; CONTINUE when it reached no new rung."""
        for rung in sorted(self.records, reverse=True):
            if epoch < rung or trial_id in self.records[rung]:
                continue
            cutoff = self._cutoff(list(self.records[rung].values()))
            self.records[rung][trial_id] = value
            worse = cutoff is not None and (value < cutoff if self.mode == "max" else value > cutoff)
            return STOP if worse else CONTINUE
        return CONTINUE

    def describe(self) -> str:
        return ", ".join(f"rung {r}: {len(v)} recorded" for r, v in self.records.items()) or "no rungs"


def parse_rung_fields(c: KeyChecker, key: str, sch: Mapping[str, Any], base_epochs: int
                      ) -> tuple[int, int, float]:
    """(max_epochs, grace_period, reduction_factor) of a scheduler mapping; max_epochs defaults to the base
    config's train.epochs (the study checks that they are equal)."""
    max_epochs = c.integer(f"{key}.max_epochs", sch.get("max_epochs", base_epochs), minimum=1)
    grace = c.integer(f"{key}.grace_period", sch.get("grace_period", 1), minimum=1)
    if grace > max_epochs:
        raise c.fail(f"{key}.grace_period", f"an int <= {key}.max_epochs ({max_epochs})", grace)
    rf = c.number(f"{key}.reduction_factor", sch.get("reduction_factor", 2), minimum=1, strict=True)
    return max_epochs, grace, rf
