"""Fixtures for the report tests: one results root with the fake studies (and the search's importances, from
its Optuna storage as harma.tune computes them), written once per session through ResultsStore, and the pages
built from it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import optuna  # noqa: E402
from fake_studies import write_all  # noqa: E402

from harma.tune.importance import importances_of  # noqa: E402

FEW_TRIALS_FOR_IMPORTANCE = 5  # the fake search has 6 COMPLETE trials; the default minimum (10) hides them


@pytest.fixture(scope="session")
def fake_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("fake-results")
    storage = f"sqlite:///{base / 'optuna.db'}"
    store = write_all(base / "results", optuna_db=storage)
    store.write_importances(importances_of(optuna.load_study(study_name="srch", storage=storage), "srch"))
    return store, storage


@pytest.fixture(scope="session")
def built_pages(fake_root, tmp_path_factory):
    from harma.report import build_index, build_study_report

    store, storage = fake_root
    out = tmp_path_factory.mktemp("reports")
    pages = {name: build_study_report(store, name, out / name, min_importance_trials=FEW_TRIALS_FOR_IMPORTANCE)
             for name in ("abl", "srch", "rep")}
    pages["index"] = build_index(store, out)
    return pages
