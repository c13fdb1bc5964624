"""CLI hook for the results tables: `harma results [STUDY] [--results ROOT] [--csv FILE]`.

Without a study it lists the studies under the root with their trial status counts; with one it prints
that study's trials (id, kind, arm, seed, status, epochs, best val and test mR) or writes them all to CSV.
The lead's `harma/cli.py` calls `add_results_commands(subparsers)`; each parser sets `func(args) -> int`.
"""
from __future__ import annotations

import argparse
import os

DEFAULT_ROOT = os.environ.get("HARMA_RESULTS", "results")
SUMMARY_COLUMNS = ["trial_id", "kind", "arm", "seed", "status", "stop_epoch", "val_r_mean", "test_r_mean"]


def add_results_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the `results` subcommand."""
    p = subparsers.add_parser("results", help="list studies in a results root, or one study's trials")
    p.add_argument("study", nargs="?", help="study name (omit to list studies)")
    p.add_argument("--results", default=DEFAULT_ROOT,
                   help="results root: local path or URI (s3://, gs://); default $HARMA_RESULTS or ./results")
    p.add_argument("--csv", help="write the study's full trials table to this CSV file")
    p.set_defaults(func=run_results)


def run_results(args: argparse.Namespace) -> int:
    import pandas as pd

    from harma.results.store import ResultsStore

    store = ResultsStore(args.results)
    if args.study is None:
        names = store.studies()
        if not names:
            print(f"no studies under {args.results}")
        for name in names:
            counts = store.read_trials(name)["status"].value_counts().sort_index()
            print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0
    trials = store.read_trials(args.study)
    if args.csv:
        trials.to_csv(args.csv, index=False)
        print(f"wrote {len(trials)} trials to {args.csv}")
        return 0
    with pd.option_context("display.max_rows", None, "display.width", 160):
        print(trials[SUMMARY_COLUMNS].to_string(index=False) if len(trials) else f"no trials in {args.study}")
    return 0
