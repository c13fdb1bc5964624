"""The default results root has one owner, `harma.results.root.default_results_root()`: `$HARMA_RESULTS` (read when
the command runs), else `results`; every `--results` default, a study's `storage` default and the snapshot
lookup of `harma study status NAME` follow it, and the local existence checks answer without pyarrow."""
from __future__ import annotations

import pytest

from harma.cli import build_parser, main
from harma.results.root import default_results_root, has_trials, study_names
from harma.study.parse import parse_study
from harma.study.snapshot import find_study, save_study_snapshot

STUDY = {"name": "rooted", "kind": "ablation", "seeds": [1], "arms": {"harma": {}},
         "base": {"config": "synthetic-tiny", "set": {"train.epochs": 1}}}


@pytest.mark.parametrize("env, root", [(None, "results"), ("", "results"), ("/data/harma", "/data/harma")])
def test_the_default_is_the_variable_else_results(monkeypatch, env, root):
    if env is None:
        monkeypatch.delenv("HARMA_RESULTS", raising=False)
    else:
        monkeypatch.setenv("HARMA_RESULTS", env)
    assert default_results_root() == root
    parser = build_parser()
    for argv in (["results"], ["results", "show", "x"], ["report", "x"], ["report-index"]):
        assert parser.parse_args(argv).results == root, argv
    assert parse_study(dict(STUDY)).storage == root


def test_status_by_name_finds_the_snapshot_under_the_variable(tmp_path, monkeypatch, capsys):
    root = tmp_path / "elsewhere"
    monkeypatch.setenv("HARMA_RESULTS", str(root))
    monkeypatch.chdir(tmp_path)
    save_study_snapshot(parse_study(dict(STUDY), source="rooted.yaml"))
    assert find_study("rooted").storage == str(root)
    assert main(["study", "status", "rooted"]) == 0
    assert capsys.readouterr().out == "rooted: no trials recorded yet\n"


def test_local_answers_match_the_store(tmp_path):
    (tmp_path / "trials" / "study=a").mkdir(parents=True)
    (tmp_path / "trials" / "study=a" / ".t1.parquet.tmp").write_bytes(b"")
    (tmp_path / "epochs" / "study=b").mkdir(parents=True)
    assert study_names(tmp_path) == ["a", "b"] and not has_trials(tmp_path, "a")
    (tmp_path / "trials" / "study=a" / "t1.parquet").write_bytes(b"")
    assert has_trials(tmp_path, "a") and not has_trials(tmp_path, "b") and study_names(tmp_path / "none") == []
