"""A live report: while a study runs, rewrite its page whenever its results change, at most every N seconds.

`LiveReport` polls the study's Parquet tables (any results root ResultsStore reads, local or object store),
fingerprints them (trial ids with their status and finish time, and the number of epoch rows) and, when the
fingerprint changed and at least `every` seconds have passed since the last build, rebuilds the page from the
frames it just read and writes it whole (harma.report.html builds the report folder beside it and swaps it
in: a reader finds the previous page or the new one with its CSVs, never a mix, and for the instant between
the two renames none).  The page lists the RUNNING trials with the epochs they have reported and says when it
was built.  `live_report(...)` runs it on a daemon thread around a block (`harma study run --report`) and
builds the page one last time when the block ends, so the final page shows the finished study.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harma.report.spec import StudySpec

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_EVERY = 30.0


class LiveReport:
    """Rebuilds one study's page when its results change, at most every `every` seconds."""

    def __init__(self, store, study: str, out_dir: str | Path, spec: StudySpec | None = None,
                 every: float = DEFAULT_EVERY) -> None:
        if every < 0:
            raise ValueError(f"live report: every={every}: expected seconds >= 0")
        self.store, self.study, self.out_dir, self.spec = store, study, Path(out_dir), spec
        self.every = float(every)
        self.last_build = -float("inf")
        self.fingerprint: tuple | None = None
        self.builds = 0

    def poll(self, force: bool = False, final: bool = False) -> bool:
        """Rebuild the page if the results changed and the interval has passed (or `force`); True if built.
        `final`: the run has ended, and the page says so instead of inviting a reload."""
        now = time.monotonic()
        if not force and now - self.last_build < self.every:
            return False
        trials, epochs = self.store.read_trials(self.study), self.store.read_epochs(self.study)
        fingerprint = _fingerprint(trials, epochs)
        if not force and fingerprint == self.fingerprint:
            return False
        self._build(trials, epochs, final)
        self.fingerprint, self.last_build = fingerprint, time.monotonic()
        self.builds += 1
        return True

    def _build(self, trials: pd.DataFrame, epochs: pd.DataFrame, final: bool = False) -> Path:
        from harma.report.html import write_page
        from harma.report.pages import study_page

        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        line = (f"Live report: built at {stamp}, when this run of the study ended." if final else
                f"Live report: rebuilt at {stamp} when results change (at most every {self.every:g} s) while the "
                "study runs; reload to update.")
        page = study_page(self.study, trials, epochs, self.store.root, spec=self.spec, live=line)
        return write_page(page, self.out_dir)


def _fingerprint(trials: pd.DataFrame, epochs: pd.DataFrame) -> tuple:
    rows = ()
    if len(trials):
        rows = tuple(sorted(zip(trials["trial_id"].astype(str), trials["status"].astype(str),
                                trials["finished_at"].astype(str))))
    return rows, len(epochs)


@contextlib.contextmanager
def live_report(report: LiveReport, poll_seconds: float = 2.0) -> Iterator[LiveReport]:
    """Poll `report` on a daemon thread while the block runs; build the final page when it ends."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        while not stop.wait(poll_seconds):
            try:
                report.poll()
            except Exception as exc:  # a failed rebuild must not stop the study; the next poll retries
                if not errors:
                    print(f"harma: live report of {report.study} could not be rebuilt: {type(exc).__name__}: {exc}")
                errors.append(exc)

    thread = threading.Thread(target=loop, name=f"live-report-{report.study}", daemon=True)
    thread.start()
    try:
        yield report
    finally:
        stop.set()
        thread.join(timeout=60)
        report.poll(force=True, final=True)


def seconds(text: str) -> float:
    """argparse type of `--report-every`: a number of seconds >= 0."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def live_report_for(study_file, out_dir: str | None, every: float = DEFAULT_EVERY
                    ) -> contextlib.AbstractContextManager:
    """For `harma study run|resume --report [DIR]`: a live report of the study (a loaded Study, or the study
    file to load) written to DIR (default reports/<name>) around the block, or a no-op context when `out_dir`
    is None."""
    if out_dir is None:
        return contextlib.nullcontext()
    from harma.report.spec import spec_of
    from harma.results.store import ResultsStore
    from harma.study.model import Study
    from harma.study.parse import load_study

    study = study_file if isinstance(study_file, Study) else load_study(study_file)
    report = LiveReport(ResultsStore(study.storage_path()), study.name, out_dir or Path("reports") / study.name,
                        spec=spec_of(study), every=every)
    print(f"live report: {report.out_dir / 'index.html'} (rebuilt when results change, at most every {every:g} s)")
    return live_report(report)
