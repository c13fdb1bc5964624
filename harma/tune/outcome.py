"""How a `harma study run|resume` ends: its exit code and the one line that says why.

A pure function of the study's final trial counts, so it is tested without Ray.  Exit codes: 0 when every
planned trial finished and at most `max_failed_share` of them FAILED; 130 when the driver was stopped by
SIGINT (Ctrl-C); 1 when trials are missing for another reason or too many FAILED.
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


@dataclass(frozen=True)
class Outcome:
    code: int
    message: str | None = None   # one line for stderr when code != 0


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in (COMPLETE, PRUNED, FAILED))


def study_outcome(name: str, planned: int, counts: Mapping[str, int], interrupted: bool = False,
                  max_failed_share: float = DEFAULT_MAX_FAILED_SHARE) -> Outcome:
    """The exit code and message for a study of `planned` trials whose results hold `counts` by status."""
    finished = sum(counts.get(s, 0) for s in FINISHED)
    missing = max(0, planned - finished)
    resume = f"`harma study resume {name}` continues it"
    if interrupted:
        return Outcome(SIGINT_EXIT, f"study {name} stopped by SIGINT (Ctrl-C) with {missing} of {planned} "
                                    f"trial(s) not finished ({_counts_text(counts)}); {resume}")
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


class SigintWatch:
    """Notes whether SIGINT arrived while Ray Tune ran.

    Ray Tune installs its own SIGINT handler for the length of `Tuner.fit()` and, on the first Ctrl-C, stops the
    experiment gracefully and puts back the handler it found.  This context installs that handler (`ours`)
    first: if `ours` is back in place when fit returns although Tune installed its own, Ctrl-C was pressed.
    A SIGINT that reaches `ours` directly (Tune not watching, or a second Ctrl-C) raises KeyboardInterrupt.
    """

    def __init__(self) -> None:
        self.received = False
        self._previous = None
        self._active = threading.current_thread() is threading.main_thread()

    def _ours(self, signum, frame):
        self.received = True
        raise KeyboardInterrupt

    def __enter__(self) -> "SigintWatch":
        if self._active:
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._ours)
        return self

    def tune_was_interrupted(self) -> bool:
        """Call right after fit() returns."""
        if not self._active:
            return self.received
        tune_watches = not int(os.getenv("TUNE_DISABLE_SIGINT_HANDLER", "0"))
        return self.received or (tune_watches and signal.getsignal(signal.SIGINT) == self._ours)

    def __exit__(self, *exc) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
