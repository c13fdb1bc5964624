"""The live view drawn from a `Progress`: plain text lines (one per epoch event, for logs and pipes) and a rich
table (redrawn in place on a terminal).  Pure functions of the state and the time `now`; rich is imported only
by `table`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from harma.progress.events import EpochReported
from harma.progress.model import COUNT_ORDER, Progress, TrialRow

if TYPE_CHECKING:
    from rich.console import RenderableType


def duration(seconds: float | None) -> str:
    """`42s`, `3m05s`, `2h07m`; `?` for None."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def counts_text(progress: Progress) -> str:
    """`RUNNING 2, COMPLETE 3, PRUNED 1, FAILED 0, pending 4`."""
    counts = progress.counts()
    return ", ".join(f"{k} {counts[k]}" for k in COUNT_ORDER)


def best_text(progress: Progress) -> str:
    """`best val_r_mean 23.45 (trial-0003)`, or `best val_r_mean –` before any value."""
    best = progress.best()
    shown = f"{best[0]:.2f} ({best[1]})" if best else "–"
    return f"best {progress.began.objective} {shown}"


def time_text(progress: Progress, now: float) -> str:
    """`elapsed 1m12s, left ≤ 2m30s` (≤ when a scheduler may stop trials early, ~ otherwise)."""
    left = progress.left()
    bound = "≤ " if progress.began.early_stopping else "~"
    return f"elapsed {duration(progress.elapsed(now))}, left {bound + duration(left) if left is not None else '?'}"


def status_text(progress: Progress, now: float) -> str:
    return f"{counts_text(progress)} | {best_text(progress)} | {time_text(progress, now)}"


def epoch_line(progress: Progress, event: EpochReported, now: float) -> str:
    """The line printed for an epoch event when the output is not a terminal."""
    row = progress.rows[event.trial_id]
    rate = f"{row.epochs_per_min:.1f}" if row.epochs_per_min else "?"
    return (f"[{progress.began.name}] {row.trial_id} epoch {row.epoch}/{row.planned}: {progress.began.objective} "
            f"{number(row.last)} (best {number(row.best)}), {rate} epochs/min | {status_text(progress, now)}")


def _cells(row: TrialRow) -> list[str]:
    rate = f"{row.epochs_per_min:.1f}" if row.epochs_per_min else "–"
    epoch = f"{row.epoch}/{row.planned}" if row.planned else "–"
    retry = f" (retry {row.retries})" if row.retries else ""
    return [row.trial_id + retry, row.config, epoch, number(row.last), number(row.best), rate]


def table(progress: Progress, now: float) -> "RenderableType":
    """The terminal view: two heading lines (the counts; the best so far and the time), then one row per running
    trial (trial, config, epoch k/N, this epoch's and the best objective, epochs/min)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    began = progress.began
    head = Text(f"{began.name} ({began.kind}, {began.planned} trials): {counts_text(progress)}", style="bold")
    sub = Text(f"{best_text(progress)} | {time_text(progress, now)}")
    view = Table(expand=False)
    for name, justify in (("trial", "left"), ("config", "left"), ("epoch", "right"), (began.objective, "right"),
                          ("best", "right"), ("epochs/min", "right")):
        view.add_column(name, justify=justify, no_wrap=True)
    for row in progress.running():
        view.add_row(*_cells(row))
    return Group(head, sub, view)
