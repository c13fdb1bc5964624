"""CLI hook and entry points of the report pages: `harma report NAME [--results ROOT] [--out reports/NAME]
[--screenshot PNG]` and `harma report --index` (also `harma report-index`).

`build_study_report(store, study, out_dir)` writes `out_dir/index.html` plus the
CSV tables behind it and returns the page's path; `build_index(store, out_dir)` writes the index of every
study under the store's root.  The lead's `harma/cli.py` calls `add_report_commands(subparsers)`; each
parser sets `func(args) -> int`.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from harma.report.spec import SpecError, StudySpec, find_spec

DEFAULT_ROOT = os.environ.get("HARMA_RESULTS", "results")
DEFAULT_OUT = "reports"


def build_study_report(store, study: str, out_dir: str | os.PathLike, reference: str = "harma", top_k: int = 10,
                       min_importance_trials: int | None = None, spec: StudySpec | None = None,
                       self_contained: bool = False) -> Path:
    """Write one study's page (and CSVs) into out_dir, plotly.js into out_dir/../assets/ unless
    `self_contained` (then inlined); return the index.html path.

    Everything comes from the store's Parquet tables, parameter importances included (harma.tune writes
    them); a search study without them gets a page that says why."""
    from harma.report.html import write_page
    from harma.report.pages import study_page
    from harma.results.trials import MIN_IMPORTANCE_TRIALS

    page = study_page(study, store.read_trials(study), store.read_epochs(study), store.root,
                      reference=reference, top_k=top_k,
                      min_importance_trials=MIN_IMPORTANCE_TRIALS if min_importance_trials is None
                      else min_importance_trials, spec=spec)
    return write_page(page, Path(out_dir), self_contained=self_contained)


def build_index(store, out_dir: str | os.PathLike) -> Path:
    """Write the index of all studies under the store's root into out_dir; return the index.html path."""
    from harma.report.html import write_page
    from harma.report.pages import index_page, index_rows

    out = Path(out_dir)
    names = store.studies()
    table = index_rows(names, {name: store.read_trials(name) for name in names})
    built = {name: (out / name / "index.html").is_file() for name in names}
    return write_page(index_page(table, built, store.root), out)


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
    p.add_argument("--results", default=DEFAULT_ROOT,
                   help="results root: local path or URI (s3://, gs://); default $HARMA_RESULTS or ./results")
    p.add_argument("--out", help="output folder (default reports/NAME, or reports/ for the index)")


def run_report(args: argparse.Namespace) -> int:
    from harma.results.store import ResultsStore

    if args.index == (args.study is not None):
        print("harma report: give a study name or --index (not both)")
        return 2
    if args.index:
        return run_report_index(args)
    store = ResultsStore(args.results)
    if args.study not in store.studies():
        print(f"harma report: no study '{args.study}' under {args.results} "
              f"(studies: {', '.join(store.studies()) or 'none'})")
        return 1
    try:
        spec = find_spec(args.study, args.study_file, str(args.results))
    except SpecError as exc:
        print(f"harma report: --study: {exc}")
        return 2
    path = build_study_report(store, args.study, args.out or Path(DEFAULT_OUT) / args.study,
                              reference=args.reference, top_k=args.top_k,
                              min_importance_trials=args.min_importance_trials, spec=spec,
                              self_contained=args.self_contained)
    print(f"wrote {path}")
    if args.screenshot:
        return _screenshot(path, Path(args.screenshot))
    return 0


def _screenshot(page: Path, png: Path) -> int:
    from harma.report.browser import screenshot_page

    try:
        screenshot_page(page, png)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"harma report: --screenshot {png}: {exc}")
        return 2
    print(f"wrote {png}")
    return 0


def run_report_index(args: argparse.Namespace) -> int:
    from harma.results.store import ResultsStore

    path = build_index(ResultsStore(args.results), args.out or DEFAULT_OUT)
    print(f"wrote {path}")
    if getattr(args, "screenshot", None):
        return _screenshot(path, Path(args.screenshot))
    return 0
