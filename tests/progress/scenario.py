"""A fixed study run as events (two earlier trials, three running, one retried), the one the README's "What you
see while it runs" frame and lines are rendered from, and the rendering of both."""
from __future__ import annotations

import io

from harma.progress.events import (EpochReported, FinishedTrial, StudyBegan, TrialEnded, TrialRetried,
                                   TrialStarted)
from harma.progress.model import Progress
from harma.progress.render import epoch_line, table

T0 = 1_700_000_000.0
NOW = T0 + 272.0
WIDTH = 110


def _epoch(tid: str, k: int, value: float, best: float, seconds: float, at: float) -> EpochReported:
    return EpochReported(tid, k, 3, {"val": {"r_mean": value}, "train": {"loss": 1.0 / k}}, value, best, seconds,
                         T0 + at)


def events() -> list:
    earlier = (FinishedTrial("trial-0000", "COMPLETE", 41.2), FinishedTrial("trial-0001", "PRUNED", 23.7))
    return [
        StudyBegan("smoke", "search", "val_r_mean", "max", 10, 8, 3, 3, True, T0, earlier),
        TrialStarted("trial-0002", {"optim.lr": 0.00421, "adapter.gate_init": -0.33, "train.seed": 3407}, None,
                     T0 + 5),
        TrialStarted("trial-0003", {"optim.lr": 0.0152, "adapter.gate_init": 0.71, "train.seed": 3407}, None,
                     T0 + 6),
        _epoch("trial-0002", 1, 38.4, 38.4, 14.0, 20),
        _epoch("trial-0003", 1, 24.1, 24.1, 15.0, 21),
        _epoch("trial-0002", 2, 44.9, 44.9, 12.0, 33),
        _epoch("trial-0003", 2, 23.8, 24.1, 13.0, 35),
        TrialEnded("trial-0003", "PRUNED", T0 + 36),
        TrialStarted("trial-0004", {"optim.lr": 0.00187, "adapter.gate_init": 0.12, "train.seed": 3407}, None,
                     T0 + 37),
        TrialRetried("trial-0004", 1, T0 + 60),
        _epoch("trial-0004", 1, 40.3, 40.3, 16.0, 80),
        _epoch("trial-0004", 1, 40.3, 40.3, 16.0, 100),
        TrialStarted("trial-0005", {"optim.lr": 0.00093, "adapter.gate_init": -0.9, "train.seed": 3407}, None,
                     T0 + 250),
    ]


def lines() -> list[str]:
    """What `harma study run ... | tee log` prints for these events (one line per trial per epoch)."""
    evs = events()
    progress, out = Progress(evs[0]), []
    for event in evs[1:]:
        if progress.apply(event) and isinstance(event, EpochReported):
            out.append(epoch_line(progress, event, event.at))
    return out


def frame() -> str:
    """The terminal frame at NOW, as rich exports it (text, no colours)."""
    from rich.console import Console

    evs = events()
    progress = Progress(evs[0])
    for event in evs[1:]:
        progress.apply(event)
    console = Console(record=True, width=WIDTH, file=io.StringIO(), color_system=None)
    console.print(table(progress, NOW))
    return console.export_text()
