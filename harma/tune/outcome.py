"""How a `harma study run|resume` ends: its exit code and the one line that says why.

A pure function of the study's final trial counts, so it is tested without Ray.  Exit codes: 0 when every
planned trial finished and at most `max_failed_share` of them FAILED; 130 when the driver was stopped by
SIGINT (Ctrl-C), 143 by SIGTERM (both stop Ray Tune gracefully: the lock is released, `resume` continues);
1 when trials are missing for another reason or too many FAILED.
"""
from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from typing import Mapping

from harma.results.trials import COMPLETE, FAILED, FINISHED, PRUNED

DEFAULT_MAX_FAILED_SHARE = 0.5
DEFAULT_MAX_RETRIES = 2          # Tune restarts of a trial whose worker died (it resumes from its checkpoint)
SIGINT_EXIT = 130
SIGTERM_EXIT = 143
EXIT_CODES = {"SIGINT": SIGINT_EXIT, "SIGTERM": SIGTERM_EXIT}


@dataclass(frozen=True)
class Outcome:
    code: int
    message: str | None = None   # one line for stderr when code != 0


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in (COMPLETE, PRUNED, FAILED))


def signal_text(name: str) -> str:
    return "SIGINT (Ctrl-C)" if name == "SIGINT" else name


def study_outcome(name: str, planned: int, counts: Mapping[str, int], interrupted: str | None = None,
                  max_failed_share: float = DEFAULT_MAX_FAILED_SHARE) -> Outcome:
    """The exit code and message for a study of `planned` trials whose results hold `counts` by status;
    `interrupted` names the signal that stopped it ("SIGINT" or "SIGTERM")."""
    finished = sum(counts.get(s, 0) for s in FINISHED)
    missing = max(0, planned - finished)
    resume = f"`harma study resume {name}` continues it"
    if interrupted:
        return Outcome(EXIT_CODES[interrupted], f"study {name} stopped by {signal_text(interrupted)} with {missing} "
                                                f"of {planned} trial(s) not finished ({_counts_text(counts)}); {resume}")
    if missing:
        return Outcome(1, f"study {name} ended with {missing} of {planned} trial(s) not finished "
                          f"({_counts_text(counts)}); {resume}")
    failed = counts.get(FAILED, 0)
    if planned and failed / planned > max_failed_share:
        return Outcome(1, f"study {name}: {failed} of {planned} trial(s) FAILED, more than --max-failed-share "
                          f"{max_failed_share:g} ({_counts_text(counts)})")
    return Outcome(0)


def failed_share(text: str) -> float:
    """argparse type for --max-failed-share: a number in [0, 1]."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while Ray Tune was not there to stop the study gracefully; unwinds like Ctrl-C."""


def raise_terminated(signum, frame) -> None:
    """SIGTERM handler of a study driver: unwind (lock released, Ray shut down) instead of dying mid-write."""
    raise Terminated


class SigtermUnwinds:
    """Within it, SIGTERM raises Terminated (main thread only: elsewhere signals cannot be handled); the handler
    found before is put back at exit.  `install()` puts it in place again after `ray.init`, which installs
    its own SIGTERM handler."""

    def __init__(self) -> None:
        self._active = threading.current_thread() is threading.main_thread()
        self._previous = None

    def install(self) -> None:
        if self._active:
            signal.signal(signal.SIGTERM, raise_terminated)

    def __enter__(self) -> "SigtermUnwinds":
        if self._active:
            self._previous = signal.getsignal(signal.SIGTERM)
        self.install()
        return self

    def __exit__(self, *exc) -> None:
        if self._active and self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class StopWatch:
    """Notes whether SIGINT or SIGTERM arrived while Ray Tune ran, and which.

    Ray Tune installs its own SIGINT handler for the length of `Tuner.fit()` and, on the first Ctrl-C, stops the
    experiment gracefully and puts back the handler it found.  This context installs that handler (`ours`)
    first: if `ours` is back in place when fit returns although Tune installed its own, Ctrl-C was pressed.
    SIGTERM (a batch scheduler, systemd, `kill`) is handed to Tune's SIGINT handler, so it stops the study the
    same graceful way.  A signal that Tune is not there to take (Tune not watching, or a second one) raises
    KeyboardInterrupt (Terminated for SIGTERM).
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}
        self._active = threading.current_thread() is threading.main_thread()

    def _ours(self, signum, frame):
        self.received = self.received or "SIGINT"
        raise KeyboardInterrupt

    def _on_sigterm(self, signum, frame):
        self.received = "SIGTERM"
        tune_handler = signal.getsignal(signal.SIGINT)
        if tune_handler == self._ours or not callable(tune_handler):
            raise Terminated
        tune_handler(signal.SIGINT, frame)

    def __enter__(self) -> "StopWatch":
        if self._active:
            for signum, handler in ((signal.SIGINT, self._ours), (signal.SIGTERM, self._on_sigterm)):
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, handler)
        return self

    def interruption(self) -> str | None:
        """Call right after fit() returns: "SIGINT", "SIGTERM" or None."""
        if not self._active or self.received:
            return self.received
        tune_watches = not int(os.getenv("TUNE_DISABLE_SIGINT_HANDLER", "0"))
        return "SIGINT" if tune_watches and signal.getsignal(signal.SIGINT) == self._ours else None

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
