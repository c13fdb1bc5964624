"""The relay between a DDP trial's Ray Train workers and its Tune trial: results go up one at a time, and the
workers go on only when Tune has continued the trial.

Ray Train's own route to Tune (`TuneReportCallback`) queues results and lets the workers train on, so a
worker could checkpoint an epoch after the one Tune stopped the trial on.  Here rank 0 puts each epoch's
result on `up` and waits on `down`; the trial driver's thread takes it, calls `tune.report` (which returns only
when Tune continues the trial: on STOP the trial actor, and with it the workers, are torn down while they
wait) and then puts the go-ahead.  A deterministic failure goes up as a failure result and ends the trial.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

POLL_S = 0.5


class Relay:
    """Two Ray queues (0 CPUs each): `up` carries ("epoch" | "failure", result), `down` the go-aheads."""

    def __init__(self) -> None:
        from ray.util.queue import Queue

        self.up = Queue(actor_options={"num_cpus": 0})
        self.down = Queue(actor_options={"num_cpus": 0})

    # worker side (rank 0) ----------------------------------------------------------------------------
    def report(self, result: dict[str, Any]) -> None:
        """Hand one epoch's result to the trial and wait until Tune continues the trial."""
        self.up.put(("epoch", result))
        self.down.get()

    def fail(self, result: dict[str, Any]) -> None:
        """Hand a deterministic failure (`records.failure_result`) to the trial."""
        self.up.put(("failure", result))

    # trial side --------------------------------------------------------------------------------------
    def serve(self, fit: Callable[[], Any], report: Callable[[dict], None] | None = None) -> None:
        """Run `fit` in a background thread and relay its results to `report` (default `tune.report`) until it
        ends or a failure arrives; an error `fit` raised is raised here."""
        if report is None:
            from ray import tune

            report = tune.report
        errors: list[BaseException] = []
        thread = threading.Thread(target=_capture, args=(fit, errors), name="harma-fit", daemon=True)
        thread.start()
        while True:
            alive = thread.is_alive()
            kind = self._relay_one(report, wait=alive)
            if kind == "failure":
                return                   # the trial ends; Tune tears down the workers with it
            if kind is None and not alive:
                break
        thread.join()
        if errors:
            raise errors[0]

    def _relay_one(self, report: Callable[[dict], None], wait: bool) -> str | None:
        """Relay one item and return its kind; None when none came (within POLL_S when `wait`)."""
        from ray.util.queue import Empty

        try:
            kind, result = self.up.get(timeout=POLL_S) if wait else self.up.get_nowait()
        except Empty:
            return None
        report(result)
        if kind == "epoch":
            self.down.put(True)
        return kind


def _capture(fit: Callable[[], Any], errors: list[BaseException]) -> None:
    try:
        fit()
    except BaseException as exc:  # handed to the trial's thread, which raises it
        errors.append(exc)
