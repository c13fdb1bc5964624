"""What every scheduler module shares: the decision vocabulary (CONTINUE, STOP), one recorded epoch value
(`Observation`), the `Policy` a scheduler builds (a pure object deciding on one trial's epoch result, keyed by
the harma trial id), the protocols a scheduler module and its spec follow, the key checker a study file is read
with (`harma.study.checker.Checker` fits it), and `observations_from_epochs`, which reads a study's Parquet epochs
table back into observations so a resumed driver rebuilds a policy's state.  A spec's `max_epochs` is the
epoch budget it schedules over (None: trials run to the end, nothing is stopped early)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Literal, Mapping, Protocol, Sequence

Decision = Literal["CONTINUE", "STOP"]
CONTINUE: Decision = "CONTINUE"
STOP: Decision = "STOP"


@dataclass(frozen=True)
class Observation:
    """The objective value a trial reported for one epoch (live, or read back from the epochs table)."""
    trial_id: str
    epoch: int
    value: float


class Policy(Protocol):
    """Decides on each epoch result of a trial; holds whatever state it needs, rebuilt from observations.
    `shared_epochs(trial_id)`: the epochs at which that trial's decision reads or writes state other trials share
    (a rung); at every other epoch its decision depends on its own result alone (harma.schedulers.ordered)."""

    def decide(self, trial_id: str, epoch: int, value: float) -> Decision: ...

    def shared_epochs(self, trial_id: str) -> frozenset[int]: ...

    def describe(self) -> str: ...


class SchedulerSpec(Protocol):
    """A scheduler's frozen settings, as a study holds them (`Study.scheduler`); `deterministic`: decisions in
    trial order and Optuna asked and told in trial order (harma.schedulers.ordered, harma.tune.searcher)."""
    type: ClassVar[str]
    deterministic: bool

    @property
    def max_epochs(self) -> int | None: ...


class KeyChecker(Protocol):
    """Typed readers of a study file's values that raise one StudyError naming the file and the key path."""
    source: str

    def fail(self, key: str, expected: str, got: Any = ...) -> Exception: ...

    def mapping(self, key: str, value: Any, allowed: Sequence[str], required: Sequence[str] = ()) -> dict: ...

    def choice(self, key: str, value: Any, options: Sequence[str]) -> str: ...

    def integer(self, key: str, value: Any, minimum: int | None = None) -> int: ...

    def number(self, key: str, value: Any, minimum: float | None = None, strict: bool = False) -> float: ...

    def boolean(self, key: str, value: Any) -> bool: ...


class SchedulerModule(Protocol):
    """What one scheduler module gives the registry."""

    def parse(self, c: KeyChecker, key: str, value: Mapping[str, Any], base_epochs: int) -> SchedulerSpec: ...

    def to_data(self, spec: Any) -> dict[str, Any]: ...

    def policy(self, spec: Any, mode: str, recorded: Iterable[Observation]) -> Policy: ...


def is_early_stopping(spec: SchedulerSpec) -> bool:
    """Whether the scheduler may stop a trial before its last epoch (it then fixes train.epochs)."""
    return spec.max_epochs is not None


def observations_from_epochs(epochs: Any, metric: str, split: str) -> list[Observation]:
    """The `split` `metric` rows of a Parquet epochs frame (columns trial_id, epoch, split, metric, value), in
    the frame's order; an empty list for None or an empty frame."""
    if epochs is None or len(epochs) == 0:
        return []
    rows = epochs[(epochs["split"] == split) & (epochs["metric"] == metric)]
    return [Observation(str(r.trial_id), int(r.epoch), float(r.value)) for r in rows.itertuples(index=False)]
