"""No early stopping (`scheduler: {type: none}`, the default): every trial runs all its epochs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping

from harma.errors import StudyError
from harma.schedulers.base import CONTINUE, Decision, KeyChecker, Observation


@dataclass(frozen=True)
class NoneSpec:
    type: ClassVar[str] = "none"
    deterministic: bool = False      # Optuna asked and told in trial order (nothing to hold here)

    @property
    def max_epochs(self) -> None:
        """No epoch budget of its own: trials run to their train.epochs."""
        return None


class RunToEnd:
    """The policy of `none`: every result continues (the trainer ends a trial after its last epoch)."""

    def decide(self, trial_id: str, epoch: int, value: float) -> Decision:
        return CONTINUE

    def shared_epochs(self, trial_id: str) -> frozenset[int]:
        return frozenset()

    def describe(self) -> str:
        return "no early stopping"


def parse(c: KeyChecker, key: str, value: Mapping[str, Any], base_epochs: int) -> NoneSpec:
    extra = [k for k in value if k != "type"]
    if extra:
        raise StudyError(f"{c.source}: {key}.{extra[0]}: only allowed with an early-stopping {key}.type "
                         f"(not none)")
    return NoneSpec()


def to_data(spec: NoneSpec) -> dict[str, Any]:
    return {"type": spec.type, "deterministic": spec.deterministic}


def policy(spec: NoneSpec, mode: str, recorded: Iterable[Observation]) -> RunToEnd:
    return RunToEnd()
