"""Decisions in trial order (`scheduler.deterministic: true`): a wrapper around any rung-local `Policy` that holds
a trial's result at an epoch where its decision reads state shared with other trials (a rung: `shared_epochs`)
until every trial registered before it that shares that epoch has been decided there, or has finished, or was
stopped before it; then it decides them in registration order.  "Registered" is the order trials are created,
which for a seeded study is the order they are asked, so the inner policy sees every rung's records arrive in
the same order on every run, whatever order the results came in.  The cohort of (trial t, epoch e) is thus every
earlier trial that will report epoch e at a shared epoch of its own: trials asked one by one, and as many at
once as max_concurrent lets run, all count, and a trial that stops or fails earlier leaves every later cohort.
A rung-local policy is one whose decision at epoch e reads only other trials' epoch-e results (ASHA, Hyperband,
none).  Pure Python: the Tune adapter (harma.tune.scheduler) continues or stops the held trials it releases.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harma.schedulers.base import STOP, Decision, Policy

Released = list[tuple[str, Decision]]        # (trial id, decision) in the order the inner policy decided them


@dataclass
class _Trial:
    index: int                                # registration order
    decided_through: int = 0                  # the highest epoch decided for it so far
    done: bool = False                        # finished, or stopped: it reports no later epoch
    held: list[tuple[int, float]] = field(default_factory=list)    # (epoch, value) waiting for a decision


class OrderedDecisions:
    """`add` each trial as it is created, `report` each epoch result, `finish` each trial that ends; each call
    returns the decisions it releases (possibly for other, held trials), in the order they were taken."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.trials: dict[str, _Trial] = {}

    def add(self, trial_id: str) -> None:
        """Register a trial (again: nothing changes; a retried trial keeps its place)."""
        self.trials.setdefault(trial_id, _Trial(len(self.trials)))

    def report(self, trial_id: str, epoch: int, value: float) -> Released:
        self.add(trial_id)
        trial = self.trials[trial_id]
        if trial.done:                       # a result after a STOP (Tune may deliver one more): stop again
            return [(trial_id, STOP)]
        if epoch not in self.inner.shared_epochs(trial_id):
            return [(trial_id, self._decide(trial_id, epoch, value))]
        trial.held.append((epoch, value))
        return self._release()

    def finish(self, trial_id: str) -> Released:
        """The trial ended (completed, stopped, failed or removed): no earlier-trial wait includes it any more."""
        self.add(trial_id)
        trial = self.trials[trial_id]
        trial.done, trial.held = True, []
        return self._release()

    def holding(self) -> dict[str, int]:
        """{trial id: epoch} of every trial waiting for a decision."""
        return {tid: t.held[0][0] for tid, t in self.trials.items() if t.held}

    def _decide(self, trial_id: str, epoch: int, value: float) -> Decision:
        trial = self.trials[trial_id]
        decision = self.inner.decide(trial_id, epoch, value)
        trial.decided_through = max(trial.decided_through, epoch)
        if decision == STOP:
            trial.done = True
        return decision

    def _ready(self, trial_id: str, epoch: int) -> bool:
        """Every earlier trial sharing `epoch` is decided there, finished or stopped."""
        index = self.trials[trial_id].index
        return all(t.done or t.decided_through >= epoch for tid, t in self.trials.items()
                   if t.index < index and epoch in self.inner.shared_epochs(tid))

    def _release(self) -> Released:
        released: Released = []
        progress = True
        while progress:
            progress = False
            for tid in sorted((t for t in self.trials if self.trials[t].held), key=lambda t: self.trials[t].index):
                epoch, value = self.trials[tid].held[0]
                if self._ready(tid, epoch):
                    self.trials[tid].held.pop(0)
                    released.append((tid, self._decide(tid, epoch, value)))
                    progress = True
                    break
        return released
