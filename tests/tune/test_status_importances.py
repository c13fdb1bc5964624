"""Parameter importances are shown from the same number of COMPLETE trials everywhere (MIN_IMPORTANCE_TRIALS,
owned by harma.results.trials): `harma study status` prints them from 10 on and, below, one line saying how many
there are and the minimum (it printed them from 6); the study driver's end-of-search line says the same, while
still recording the table; the report's default is that same number.  Nothing here starts Ray."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import optuna
import pytest

from harma.cli import main
from harma.results.store import ResultsStore
from harma.results import trials as trials_module
from harma.results.trials import MIN_IMPORTANCE_TRIALS
from harma.tune import runner
from harma.study.columns import study_columns
from harma.study.snapshot import save_study_snapshot
from harma.tune.space import study_storage
from harma.study.parse import load_study

STUDIES = Path(__file__).resolve().parents[2] / "studies"
WITHHELD_6 = ("not shown, since only 6 trials are COMPLETE; they are shown from 10 COMPLETE trials on (a ranking "
              "of parameters from fewer mostly reflects noise)")


def smoke_with_trials(root: Path, complete: int):
    """The smoke search saved under `root` with `complete` COMPLETE trials and one PRUNED, in Parquet and in
    its Optuna storage (the same parameters and values)."""
    study = dataclasses.replace(load_study(STUDIES / "smoke.yaml"), storage=str(root))
    save_study_snapshot(study)
    store, columns = ResultsStore(root), study_columns(study)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opt = optuna.create_study(study_name="smoke", storage=study_storage(study), direction="maximize")
    dists = {"adapter.bottleneck": optuna.distributions.CategoricalDistribution([8, 16, 32]),
             "optim.lr": optuna.distributions.FloatDistribution(1e-5, 3e-2, log=True)}
    for i in range(complete + 1):
        status = "COMPLETE" if i < complete else "PRUNED"
        params = {"adapter.bottleneck": (8, 16, 32)[i % 3], "optim.lr": 1e-4 * (1 + i)}
        value = 20.0 + 3 * (i % 3) + 0.1 * i
        store.write_trial({"study": "smoke", "trial_id": f"trial-{i:04d}", "kind": "search", "status": status,
                           "val_r_mean": value, "test_r_mean": value - 1, "params": params}, columns)
        state = optuna.trial.TrialState.COMPLETE if status == "COMPLETE" else optuna.trial.TrialState.PRUNED
        opt.add_trial(optuna.trial.create_trial(params=params, distributions=dists, state=state,
                                                value=value if status == "COMPLETE" else None))
    return study, store


def test_the_wording_below_the_minimum():
    assert MIN_IMPORTANCE_TRIALS == 10
    assert trials_module.importances_withheld(6) == WITHHELD_6
    assert trials_module.importances_withheld(1).startswith("not shown, since only 1 trial is COMPLETE;")
    assert trials_module.importances_withheld(9) is not None and trials_module.importances_withheld(10) is None


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """Work in an empty folder, so `harma study status smoke` reads the saved snapshot, not studies/smoke.yaml."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")


def test_status_with_6_complete_trials_says_why_there_are_no_importances(tmp_path, elsewhere, capsys):
    root = tmp_path / "results"
    smoke_with_trials(root, complete=6)
    assert main(["study", "status", "smoke", "--results", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "smoke (search): COMPLETE 6, PRUNED 1, 7 in all"
    assert out[-1] == f"importances: {WITHHELD_6}"
    assert not any(line.startswith("importances over") for line in out)
    assert not (root / "importances").exists()       # nothing computed from too few trials
    assert os.listdir(".") == []


def test_status_from_10_complete_trials_prints_importances(tmp_path, elsewhere, capsys):
    root = tmp_path / "results"
    smoke_with_trials(root, complete=MIN_IMPORTANCE_TRIALS)
    assert main(["study", "status", "smoke", "--results", str(root)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("importances over 10 COMPLETE trials (PedAnovaImportanceEvaluator): ")
    assert {part.split()[0] for part in last.split(": ", 1)[1].split(", ")} == {"adapter.bottleneck", "optim.lr"}
    assert len(ResultsStore(root).read_importances("smoke")) == 2


def test_the_driver_line_says_the_same_and_still_records_the_table(tmp_path):
    study, store = smoke_with_trials(tmp_path / "results", complete=6)
    lines = []
    runner._report_importances(study, store, lambda text, **kw: lines.append(text))
    assert lines == [f"[smoke] parameter importances: {WITHHELD_6}"]
    table = store.read_importances("smoke")
    assert table["n_trials"].tolist() == [6, 6]       # recorded: the table says how many trials are behind it


def test_the_driver_line_shows_importances_from_the_minimum(tmp_path):
    study, store = smoke_with_trials(tmp_path / "results", complete=MIN_IMPORTANCE_TRIALS)
    lines = []
    runner._report_importances(study, store, lambda text, **kw: lines.append(text))
    assert len(lines) == 1 and lines[0].startswith("[smoke] parameter importances over 10 COMPLETE trials: ")
    assert "adapter.bottleneck" in lines[0] and "optim.lr" in lines[0]


def test_status_the_driver_and_the_report_take_the_minimum_from_one_owner(tmp_path, elsewhere, monkeypatch, capsys):
    """Lowering the one constant to 6 shows the importances of 6 COMPLETE trials in all three places."""
    from harma.report.cli import build_study_report

    root = tmp_path / "results"
    study, store = smoke_with_trials(root, complete=6)
    monkeypatch.setattr(trials_module, "MIN_IMPORTANCE_TRIALS", 6)
    lines = []
    runner._report_importances(study, store, lambda text, **kw: lines.append(text))
    assert lines[0].startswith("[smoke] parameter importances over 6 COMPLETE trials: ")
    assert main(["study", "status", "smoke", "--results", str(root)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("importances over 6 COMPLETE trials ")
    html = build_study_report(store, "smoke", tmp_path / "page").read_text()
    assert "Parameter importances from n = 6 COMPLETE trials" in html and "hidden, since only" not in html
