"""`harma.verify` without Ray: a trial trained by the plain trainer and recorded as a study driver records it
passes every check; each lie planted in a copy (another epoch's weights, a missing log line, a stray trials
file, debris, a missing epoch row) is one problem naming the trial or file."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from harma.config import to_dict
from harma.epoch_record import TrainSummary
from harma.results.schema import StudyColumns
from harma.results.store import ResultsStore
from harma.train import train
from harma.verify import Places, verify_study


class _Study:
    name, kind = "s", "ablation"


def _record(root: Path, cfg, summary: TrainSummary, tid: str = "t1") -> None:
    store = ResultsStore(root)
    store.write_trial({"study": "s", "trial_id": tid, "kind": "ablation", "status": "COMPLETE",
                       "stop_epoch": summary.epochs_run, "best_epoch": summary.best_epoch,
                       **{f"val_{k}": v for k, v in summary.best_val.items() if k != "r_mean_tie_gap"},
                       **{f"test_{k}": v for k, v in summary.test_at_best_val.items() if k != "r_mean_tie_gap"},
                       "resolved_config": yaml.safe_dump(to_dict(cfg))}, StudyColumns("s"))
    for record in summary.history:
        store.write_epoch("s", tid, record.epoch, {"val": record.val, "test": record.test})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_root):
    """Results root with one 3-epoch trial whose best epoch is not its last (a model trained on, then worse)."""
    from harma.config import load_config

    root = tmp_path_factory.mktemp("verify") / "results"
    cfg = load_config("synthetic-tiny", {"data.image_root": str(synth_root), "data.synthetic_images": 120,
                                         "train.out_dir": str(root / "runs" / "s" / "t1"), "train.epochs": 3})
    summary = train(cfg)
    _record(root, cfg, summary)
    return root, summary


@pytest.fixture
def copy(trained, tmp_path):
    root, summary = trained
    shutil.copytree(root, tmp_path / "results")
    return tmp_path / "results", summary


def _problems(root: Path, evaluate: bool = True) -> list[str]:
    verdict = verify_study(_Study(), Places(str(root), root / "runs" / "s"), evaluate=evaluate, echo=lambda *a, **k: None)
    return [str(p) for p in verdict.problems]


def test_a_trial_recorded_as_trained_passes(copy):
    root, _ = copy
    assert _problems(root) == []


def test_a_best_pt_of_another_epoch_is_named(copy):
    root, summary = copy
    import torch

    run = root / "runs" / "s" / "t1"
    best = torch.load(run / "best.pt", weights_only=True)
    torch.save({"trainable": best["trainable"], "epoch": 99}, run / "best.pt")
    assert _problems(root, evaluate=False) == [
        f"t1: best.pt holds epoch 99, but the row's best epoch is {summary.best_epoch}"]


def test_an_untrained_best_pt_is_a_value_problem(copy):
    root, _ = copy
    import torch

    run = root / "runs" / "s" / "t1"
    best = torch.load(run / "best.pt", weights_only=True)
    zeroed = {k: torch.zeros_like(v) for k, v in best["trainable"].items()}
    torch.save({"trainable": zeroed, "epoch": best["epoch"]}, run / "best.pt")
    assert any("t1: best.pt re-evaluates val_r_mean to" in p for p in _problems(root))


def test_missing_log_line_epoch_row_orphan_folder_and_debris_are_each_named(copy):
    root, summary = copy
    run = root / "runs" / "s" / "t1"
    lines = (run / "log.jsonl").read_text().splitlines(keepends=True)
    (run / "log.jsonl").write_text("".join(lines[:-1]))
    (root / "epochs" / "study=s" / "t1-e0001.parquet").unlink()
    trials = root / "trials" / "study=s"
    (trials / ".t1.parquet.ab12cd34.tmp").write_text("half")
    (root / "runs" / "s" / "t9").mkdir()
    problems = _problems(root, evaluate=False)
    n = summary.epochs_run
    assert f"t1: log.jsonl holds epochs {list(range(1, n))}, expected 1..{n}" in problems
    assert f"t1: the epochs table holds epochs {list(range(2, n + 1))}, expected 1..{n} (its stop epoch)" in problems
    assert any(p.startswith(str(trials / ".t1.parquet.ab12cd34.tmp") + ": a temporary file") for p in problems)
    assert f"{root / 'runs' / 's' / 't9'}: a run folder with no trials row" in problems
    assert len(problems) == 4


def test_a_stray_copy_of_a_trials_file_is_named_and_stops_the_row_checks(copy):
    root, _ = copy
    trials = root / "trials" / "study=s"
    shutil.copy(trials / "t1.parquet", trials / "t1-old.parquet")
    problems = _problems(root, evaluate=False)
    assert problems[0].startswith(f"{trials / 't1-old.parquet'}: a stray trials file: it holds ['t1']")
    assert problems[1].startswith("results: results files ") and "both hold trial t1" in problems[1]
    assert len(problems) == 2


def test_missing_checkpoints_are_named(copy):
    root, _ = copy
    (root / "runs" / "s" / "t1" / "best.pt").unlink()
    assert _problems(root) == [f"t1: {root / 'runs' / 's' / 't1'} lacks best.pt"]


def test_study_verify_cli_exits_1_with_a_line_per_problem(copy, capsys, monkeypatch):
    from harma.cli import main
    from harma.study import snapshot

    root, _ = copy
    (root / "runs" / "s" / "t1" / "last.pt").unlink()
    monkeypatch.setattr(snapshot, "find_study", lambda name, results=None, resume=False: _Study())
    assert main(["study", "verify", "s", "--results", str(root), "--no-eval"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"problem: t1: {root / 'runs' / 's' / 't1'} lacks last.pt"
    assert out[-1] == "verify s: 1 trial row(s), 0 best.pt re-evaluated, 1 problem(s)"
