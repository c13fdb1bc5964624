"""CLI hook for the results tables: `harma results [list|show NAME|export NAME|--all]`.

`list` (the default) prints the studies under a results root with their trial status counts; `show NAME`
prints one study's trials (id, kind, arm, seed, status, epochs, its objective, test mR); `export` writes one
study's (or with `--all` every study's) trials or epochs, every column, to one CSV or Parquet file (default:
under the results root, `exports/`).  `harma/cli.py` calls `add_results_commands(subparsers)`; each parser
sets `func(args) -> int`.
"""
from __future__ import annotations

import argparse

from harma.results.root import RESULTS_HELP, default_results_root, require_study
SUMMARY_COLUMNS = ["trial_id", "kind", "arm", "seed", "status", "stop_epoch", "objective", "test_r_mean"]


def _root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default=default_results_root(), help=RESULTS_HELP)


def add_results_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register `results` with its `list`, `show` and `export` subcommands."""
    p = subparsers.add_parser("results", help="list studies in a results root, show or export their trials")
    _root(p)
    p.set_defaults(func=run_list)
    sub = p.add_subparsers(dest="results_command")
    q = sub.add_parser("list", help="studies with their trial counts by status (the default)")
    _root(q)
    q.set_defaults(func=run_list)
    q = sub.add_parser("show", help="one study's trials")
    q.add_argument("study")
    _root(q)
    q.set_defaults(func=run_show)
    q = sub.add_parser("export", help="one study's (or --all studies') table, every column, to one file")
    q.add_argument("study", nargs="?", help="study name (or --all)")
    q.add_argument("--all", action="store_true", help="every study under the root, the union of their columns")
    q.add_argument("--format", choices=("csv", "parquet"), default="csv")
    q.add_argument("--table", choices=("trials", "epochs"), default="trials")
    q.add_argument("--out", help="file to write (default: <results>/exports/<NAME or all-studies>-<table>.<format>)")
    _root(q)
    q.set_defaults(func=run_export)


def run_list(args: argparse.Namespace) -> int:
    from harma.results.store import ResultsStore

    store = ResultsStore(args.results)
    names = store.studies()
    if not names:
        print(f"no studies under {args.results}")
    for name in names:
        counts = store.read_trials(name)["status"].value_counts().sort_index()
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def run_show(args: argparse.Namespace) -> int:
    require_study(args.results, args.study)          # before pandas and pyarrow are imported
    import pandas as pd

    from harma.results.store import ResultsStore
    from harma.results.trials import is_missing, objective_values

    store = ResultsStore(args.results)
    trials = store.read_trials(args.study)
    if len(trials) == 0:
        print(f"no trials in {args.study}")
        return 0
    view = trials.assign(objective=[f"{o} -" if is_missing(v) else f"{o} {v:.2f}"
                                    for o, v in zip(trials["objective"], objective_values(trials))])
    with pd.option_context("display.max_rows", None, "display.width", 160):
        print(view[SUMMARY_COLUMNS].to_string(index=False))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from harma.errors import ResultsError

    if args.all == (args.study is not None):
        raise ResultsError("harma results export: give a study name or --all (not both)")
    if args.study is not None:
        require_study(args.results, args.study, "export")   # before pyarrow is imported
    from harma.results.export import export
    from harma.results.store import ResultsStore

    done = export(ResultsStore(args.results), None if args.all else args.study, args.table, args.format, args.out)
    print(f"wrote {done.rows} rows x {done.columns} columns to {done.path}")
    return 0

