"""The console sink in each mode: one line per trial per epoch where there is no terminal (a replayed epoch is not
printed again), nothing when quiet, a rich table redrawn in place on a terminal that is gone when the study
ends; and which mode a stream gets."""
from __future__ import annotations

import io

import pytest

from harma.progress.console import LINES, LIVE, QUIET, ConsoleSink, console_mode
from harma.progress.events import StudyEnded
from scenario import NOW, events, lines


class Echo:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str, flush: bool = False) -> None:
        self.lines.append(text)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_mode_prints_one_line_per_trial_per_epoch():
    echo = Echo()
    sink = ConsoleSink(LINES, echo, clock=lambda: NOW)
    for event in events():
        sink.handle(event)
    assert len(echo.lines) == 5 and sum(" trial-0004 epoch 1/3:" in line for line in echo.lines) == 1
    assert [line.split(" | ")[0] for line in echo.lines] == [line.split(" | ")[0] for line in lines()]
    assert echo.lines[-1] == ("[smoke] trial-0004 epoch 1/3: val_r_mean 40.30 (best 40.30), 3.8 epochs/min | "
                              "RUNNING 2, COMPLETE 1, PRUNED 2, FAILED 0, pending 5 | best val_r_mean 44.90 "
                              "(trial-0002) | elapsed 4m32s, left ≤ 1m24s")   # 18 epochs x 14 s / 3 slots


def test_quiet_mode_prints_nothing():
    echo = Echo()
    sink = ConsoleSink(QUIET, echo)
    for event in events():
        sink.handle(event)
    assert echo.lines == [] and sink.progress is None and sink.live is None


def test_live_mode_redraws_the_table_and_clears_it_at_the_end(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    stream = Tty()
    sink = ConsoleSink(LIVE, Echo(), clock=lambda: NOW, stream=stream)
    for event in events():
        sink.handle(event)
    sink.live.refresh()
    drawn = stream.getvalue()
    assert "trial-0004 (retry 1)" in drawn and "gate_init=-0.33 lr=0.00421" in drawn and "│   2/3 │" in drawn
    assert "RUNNING 3, COMPLETE 1, PRUNED 2, FAILED 0, pending 4" in drawn
    sink.handle(StudyEnded(NOW))
    after = stream.getvalue()[len(drawn):]
    assert sink.live is None and "\x1b[?25h" in after and after.endswith("\x1b[2K")   # cursor back, table erased


@pytest.mark.parametrize("quiet, stream, term, mode", [
    (True, Tty(), "xterm", QUIET), (False, Tty(), "xterm", LIVE), (False, io.StringIO(), "xterm", LINES),
    (False, Tty(), "dumb", LINES)])
def test_the_mode_follows_the_flag_and_the_stream(monkeypatch, quiet, stream, term, mode):
    monkeypatch.setenv("TERM", term)
    assert console_mode(quiet, stream) == mode
