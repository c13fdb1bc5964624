"""Importances computed in harma.tune from a study's Optuna storage: values over the COMPLETE trials with the
count behind them, a reason instead of values for too few trials, written to and read back from Parquet."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))

from fake_studies import SEARCH_TRIALS, write_optuna  # noqa: E402

from harma.results.store import ResultsStore  # noqa: E402
from harma.tune.importance import importances_of, record_importances  # noqa: E402
from harma.study.parse import load_study  # noqa: E402


def test_importances_over_the_complete_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    write_optuna("srch", storage)
    result = importances_of(optuna.load_study(study_name="srch", storage=storage), "srch")
    assert result.reason is None and result.n_trials == sum(t[4] == "COMPLETE" for t in SEARCH_TRIALS)
    assert set(result.importances) == {"adapter.bottleneck", "loss.gamma", "optim.lr", "adapter.share"}
    assert sum(result.importances.values()) == pytest.approx(1.0)


def test_too_few_trials_give_a_reason_in_parquet(tmp_path):
    study = dataclasses.replace(load_study("studies/smoke.yaml"), storage=str(tmp_path / "results"))
    store = ResultsStore(study.storage_path())
    result = record_importances(study, store)
    assert result.importances == {} and result.reason == "needs at least 2 COMPLETE trials, has 0"
    table = store.read_importances("smoke")
    assert table["reason"].tolist() == [result.reason] and table["n_trials"].tolist() == [0]
