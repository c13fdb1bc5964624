"""Asynchronous Hyperband (`scheduler: {type: hyperband, max_epochs, grace_period, reduction_factor, brackets}`):
brackets of ASHA with different early-stopping rates, as in Li et al. ("A System for Massively Parallel
Hyperparameter Tuning") and Ray's AsyncHyperBandScheduler.  Bracket b runs ASHA's rule
(`harma.schedulers.rungs`) on rungs from grace_period * reduction_factor**b epochs on, so bracket 0 stops trials
most eagerly and later ones let them train longer first.  Each trial belongs to the bracket the CRC-32 of its
harma trial id picks (`bracket_of`; never Python's salted hash), so a resumed driver puts it in the same bracket
and rebuilds every bracket's records from the epochs table as ASHA does.  Trials are spread evenly over the
brackets (Li et al. loop over them; Ray draws them at random, weighted towards eager brackets).  `brackets`
defaults to every bracket whose first rung does not pass max_epochs (a bracket starting at max_epochs stops
nothing: plain random search, Hyperband's last bracket)."""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping

from harma.schedulers.base import STOP, Decision, KeyChecker, Observation
from harma.schedulers.rungs import Rungs, parse_rung_fields, rung_epochs

KEYS = ("type", "max_epochs", "grace_period", "reduction_factor", "brackets")


@dataclass(frozen=True)
class HyperbandSpec:
    type: ClassVar[str] = "hyperband"
    max_epochs: int                  # equals the run config's train.epochs
    grace_period: int = 1
    reduction_factor: float = 2.0
    brackets: int = 1
    deterministic: bool = False      # decisions in trial order (harma.schedulers.ordered)

    def bracket_rungs(self) -> list[list[int]]:
        """Rung epochs of each bracket: bracket b's start at grace_period * reduction_factor**b."""
        return [rung_epochs(self.max_epochs, self.grace_period, self.reduction_factor, skip=b)
                for b in range(self.brackets)]


def most_brackets(max_epochs: int, grace_period: int, reduction_factor: float) -> int:
    """How many brackets start at or below max_epochs (grace_period * reduction_factor**b <= max_epochs)."""
    count, start = 0, float(grace_period)
    while start <= max_epochs:
        count += 1
        start *= reduction_factor
    return count


def bracket_of(trial_id: str, brackets: int) -> int:
    """The bracket of a trial: CRC-32 of its harma trial id modulo the bracket count (same in every process)."""
    return zlib.crc32(trial_id.encode("utf-8")) % brackets


class HyperbandPolicy:
    """One ladder of ASHA rungs per bracket, keyed by harma trial id, and the decisions over them."""

    def __init__(self, spec: HyperbandSpec, mode: str, recorded: Iterable[Observation] = ()) -> None:
        self.max_epochs = spec.max_epochs
        self.brackets = [Rungs(epochs, spec.reduction_factor, mode) for epochs in spec.bracket_rungs()]
        for seen in recorded:
            self._bracket(seen.trial_id).load(seen)

    def _bracket(self, trial_id: str) -> Rungs:
        return self.brackets[bracket_of(trial_id, len(self.brackets))]

    def decide(self, trial_id: str, epoch: int, value: float) -> Decision:
        if epoch >= self.max_epochs:
            return STOP
        return self._bracket(trial_id).decide(trial_id, epoch, value)

    def shared_epochs(self, trial_id: str) -> frozenset[int]:
        return frozenset(self._bracket(trial_id).records)

    def describe(self) -> str:
        return "Hyperband: " + "; ".join(f"bracket {b}: {r.describe()}" for b, r in enumerate(self.brackets))


def parse(c: KeyChecker, key: str, value: Mapping[str, Any], base_epochs: int) -> HyperbandSpec:
    sch = c.mapping(key, value, KEYS, required=("type",))
    max_epochs, grace, rf = parse_rung_fields(c, key, sch, base_epochs)
    most = most_brackets(max_epochs, grace, rf)
    brackets = c.integer(f"{key}.brackets", sch.get("brackets", most), minimum=1)
    if brackets > most:
        raise c.fail(f"{key}.brackets", f"an int from 1 to {most} (bracket b starts at grace_period * "
                                        f"reduction_factor**b epochs, at most max_epochs {max_epochs})", brackets)
    return HyperbandSpec(max_epochs, grace, rf, brackets)


def to_data(spec: HyperbandSpec) -> dict[str, Any]:
    return {"type": spec.type, **dataclasses.asdict(spec)}


def policy(spec: HyperbandSpec, mode: str, recorded: Iterable[Observation]) -> HyperbandPolicy:
    return HyperbandPolicy(spec, mode, recorded)
