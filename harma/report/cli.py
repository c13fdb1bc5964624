"""CLI hook and entry points of the report pages: `harma report NAME [--results ROOT] [--out reports/NAME]
[--screenshot PNG]` and `harma report --index` (also `harma report-index`).

`build_study_report(store, study, out_dir)` builds the report folder `out_dir` (index.html plus the CSV
tables behind it) beside it and swaps it in whole, and returns the page's path; `build_index(store, out_dir)`
writes the index of every study under the store's root, file by file, index.html last.  The lead's
`harma/cli.py` calls `add_report_commands(subparsers)`; each parser sets `func(args) -> int` and raises a
harma error for every problem (an unknown study, a bad `--study` file, a `--screenshot` that cannot be taken,
an `--out` that cannot be written, named as such), which `harma.cli.main` prints as one line, exit 2.
"""
from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from harma.atomic import check_replaceable
from harma.errors import ResultsError, SpecError, WriteError
from harma.report.spec import StudySpec, find_spec
from harma.results.root import RESULTS_HELP, default_results_root, require_study

DEFAULT_OUT = "reports"


def build_study_report(store, study: str, out_dir: str | os.PathLike, reference: str = "harma", top_k: int = 10,
                       min_importance_trials: int | None = None, spec: StudySpec | None = None,
                       self_contained: bool = False) -> Path:
    """Build the report folder out_dir anew (one study's page and CSVs, swapped in whole), plotly.js into
    out_dir/../assets/ unless `self_contained` (then inlined); return the index.html path.  An out_dir that
    is not a report folder is a WriteError naming it, before anything is computed or written.

    Everything comes from the store's Parquet tables, parameter importances included (harma.tune writes
    them); a search study without them gets a page that says why."""
    from harma.report.folder import check_report_folder, report_target
    from harma.report.html import write_page
    from harma.report.pages import study_page
    from harma.results.trials import MIN_IMPORTANCE_TRIALS

    check_report_folder(report_target(out_dir))
    page = study_page(study, store.read_trials(study), store.read_epochs(study), store.root,
                      reference=reference, top_k=top_k,
                      min_importance_trials=MIN_IMPORTANCE_TRIALS if min_importance_trials is None
                      else min_importance_trials, spec=spec)
    return write_page(page, Path(out_dir), self_contained=self_contained)


def build_index(store, out_dir: str | os.PathLike) -> Path:
    """Write the index of all studies under the store's root into out_dir; return the index.html path."""
    from harma.report.html import write_page_files
    from harma.report.pages import index_page, index_rows

    out = Path(out_dir)
    names = store.studies()
    table = index_rows(names, {name: store.read_trials(name) for name in names})
    built = {name: (out / name / "index.html").is_file() for name in names}
    return write_page_files(index_page(table, built, store.root), out)


def add_report_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `report` (one study, or --index) and `report-index`."""
    from harma.results.trials import MIN_IMPORTANCE_TRIALS

    p = subparsers.add_parser("report", help="write a study's HTML report page (or the index with --index)")
    p.add_argument("study", nargs="?", help="study name")
    p.add_argument("--index", action="store_true", help="write the index of all studies instead")
    _common(p)
    p.add_argument("--reference", default="harma", help="reference arm of ablations (default: harma)")
    p.add_argument("--top-k", type=int, default=10, help="rows of the top-configurations table (default 10)")
    p.add_argument("--min-importance-trials", type=int, default=None, metavar="N",
                   help="show Optuna importances only from N COMPLETE search trials on (default "
                   f"{MIN_IMPORTANCE_TRIALS}, as `harma study status`)")
    p.add_argument("--study", dest="study_file", metavar="FILE", help="the study file, for the base config in "
                   "reproduce lines and arm definitions and the resources per trial (default: studies/NAME.yaml "
                   "when it exists)")
    p.add_argument("--self-contained", action="store_true", help="inline plotly.js (a single ~5 MB file) "
                   "instead of sharing ../assets/plotly-VERSION.min.js with the other pages")
    p.add_argument("--screenshot", metavar="PNG", help="also save a full-page screenshot of the page there "
                   "(headless /usr/bin/chromium, offline, WebGL off)")
    p.set_defaults(func=run_report)
    q = subparsers.add_parser("report-index", help="write the index page of all studies under a results root")
    _common(q)
    q.set_defaults(func=run_report_index)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default=default_results_root(), help=RESULTS_HELP)
    p.add_argument("--out", help="output folder (default reports/NAME, or reports/ for the index)")


def run_report(args: argparse.Namespace) -> int:
    """`harma report NAME` (or `--index`): every problem is a harma error, one line on stderr and exit 2."""
    if args.index == (args.study is not None):
        raise ResultsError("report: give a study name or --index, not both")
    if args.index:
        return run_report_index(args)
    require_study(args.results, args.study, "report")     # before pyarrow, pandas and plotly are imported
    from harma.results.store import ResultsStore

    store = ResultsStore(args.results)
    try:
        spec = find_spec(args.study, args.study_file, str(args.results))
    except SpecError as exc:
        raise SpecError(f"report --study: {exc}") from None
    _check_screenshot(args.screenshot)
    out = args.out or str(Path(DEFAULT_OUT) / args.study)
    with _naming("--out", out):
        path = build_study_report(store, args.study, out, reference=args.reference, top_k=args.top_k,
                                  min_importance_trials=args.min_importance_trials, spec=spec,
                                  self_contained=args.self_contained)
    print(f"wrote {path}")
    return _screenshot(path, args.screenshot)


@contextlib.contextmanager
def _naming(flag: str, value: str) -> Iterator[None]:
    """A WriteError inside, as one ResultsError naming the option: `report --out X: cannot write ...`."""
    try:
        yield
    except WriteError as exc:
        raise ResultsError(f"report {flag} {value}: {exc}") from None


def _check_screenshot(png: str | None) -> None:
    """Refuse a `--screenshot` that cannot be taken before anything is written: no browser, or a PNG path
    that is not a regular file (a device, a FIFO, a folder)."""
    from harma.report import browser

    if png is None:
        return
    if not Path(browser.CHROMIUM).exists():
        raise ResultsError(f"report --screenshot {png}: {browser.CHROMIUM} not found: install Debian's chromium "
                           "(apt-get install chromium)")
    with _naming("--screenshot", png):
        check_replaceable(png)


def _screenshot(page: Path, png: str | None) -> int:
    from harma.report.browser import screenshot_page

    if png is None:
        return 0
    try:
        with _naming("--screenshot", png):
            screenshot_page(page, Path(png))
    except (FileNotFoundError, RuntimeError) as exc:
        raise ResultsError(f"report --screenshot {png}: {exc}") from None
    print(f"wrote {png}")
    return 0


def run_report_index(args: argparse.Namespace) -> int:
    """`harma report --index` / `harma report-index`: the index page and studies.csv under --out."""
    from harma.results.store import ResultsStore

    screenshot = getattr(args, "screenshot", None)
    _check_screenshot(screenshot)
    out = args.out or DEFAULT_OUT
    with _naming("--out", out):
        path = build_index(ResultsStore(args.results), out)
    print(f"wrote {path}")
    return _screenshot(path, screenshot)
