"""The console sink: the live view of a running study on the terminal, or its lines where there is none.

`console_mode(quiet, stream)`: `quiet` prints nothing (the CLI prints the final line and errors), `live` when
`stream` is a terminal (a rich `Live` table redrawn in place; harma's other lines print above it), `lines`
otherwise (CI, `| tee`, nohup: one line per epoch event, at most one per trial per epoch).  The state is a
`harma.progress.model.Progress`; events arrive on the driver's thread while rich redraws on its own, so both
go through one lock.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, TextIO

from harma.progress.events import EpochReported, Event, StudyBegan, StudyEnded
from harma.progress.model import Progress
from harma.progress.render import epoch_line, table

QUIET, LIVE, LINES = "quiet", "live", "lines"
REFRESH_PER_SECOND = 2


def console_mode(quiet: bool, stream: TextIO) -> str:
    """`quiet` when asked, `live` on a terminal (not TERM=dumb), else `lines`."""
    if quiet:
        return QUIET
    tty = hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"
    return LIVE if tty else LINES


class ConsoleSink:
    """Shows a driver's events on the console in one of the modes of `console_mode`."""
    name = "console"

    def __init__(self, mode: str, echo: Callable[..., None] = print, clock: Callable[[], float] = time.time,
                 stream: TextIO | None = None) -> None:
        self.mode, self.echo, self.clock = mode, echo, clock
        self.stream = stream or sys.stdout
        self.progress: Progress | None = None
        self.lock = threading.Lock()
        self.live = None

    def handle(self, event: Event) -> None:
        if self.mode == QUIET:
            return
        with self.lock:
            if isinstance(event, StudyBegan):
                self.progress = Progress(event)
            elif self.progress is not None:
                news = self.progress.apply(event)
                if self.mode == LINES and news and isinstance(event, EpochReported):
                    self.echo(epoch_line(self.progress, event, self.clock()), flush=True)
        if isinstance(event, StudyBegan) and self.mode == LIVE:
            self._start_live()
        elif isinstance(event, StudyEnded):
            self.close()

    def _renderable(self):
        with self.lock:
            return table(self.progress, self.clock())

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.stream, force_terminal=True)      # LIVE is chosen only for a terminal
        self.live = Live(get_renderable=self._renderable, console=console, refresh_per_second=REFRESH_PER_SECOND,
                         transient=True, redirect_stdout=True, redirect_stderr=True)
        self.live.start()

    def close(self) -> None:
        live, self.live = self.live, None
        if live is not None:
            live.stop()
