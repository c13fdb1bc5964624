"""The `harma results` CLI hook: listing studies with status counts, one study's trials, CSV export."""
from __future__ import annotations

import argparse

import pandas as pd

from harma.results import ResultsStore, StudyColumns
from harma.results.cli import add_results_commands


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="harma")
    add_results_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_results_cli(tmp_path, capsys):
    store = ResultsStore(tmp_path / "r")
    for tid, status in (("a", "COMPLETE"), ("b", "PRUNED"), ("c", "COMPLETE")):
        store.write_trial({"study": "s1", "trial_id": tid, "kind": "search", "status": status, "seed": 0,
                           "val_r_mean": 10.0, "params": {"loss.gamma": 1.0}}, StudyColumns("s1", {"loss.gamma": "float"}))
    assert _run(["results", "--results", str(tmp_path / "r")]) == 0
    assert "s1: COMPLETE 2, PRUNED 1" in capsys.readouterr().out
    assert _run(["results", "s1", "--results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "trial_id" in out and "PRUNED" in out
    assert _run(["results", "s1", "--results", str(tmp_path / "r"), "--csv", str(tmp_path / "t.csv")]) == 0
    assert pd.read_csv(tmp_path / "t.csv")["trial_id"].tolist() == ["a", "b", "c"]
    assert _run(["results", "--results", str(tmp_path / "empty")]) == 0
    assert "no studies" in capsys.readouterr().out
