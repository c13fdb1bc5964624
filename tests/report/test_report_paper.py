"""Paper vs ours: a study with a paper file beside it gets a section comparing every seed with the published
numbers (exact values in paper-vs-ours.csv); a study without one gets none; a bad paper file is one error."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fake_studies import write_ablation

from harma.errors import SpecError
from harma.report import build_study_report
from harma.report.spec import load_spec
from harma.results.store import ResultsStore

NAME = "reproduce-x"


def _study(folder: Path, paper: dict | None) -> Path:
    study = folder / f"{NAME}.yaml"
    study.write_text(yaml.safe_dump({"name": NAME, "kind": "ablation", "base": {"config": "synthetic-tiny"},
                                     "seeds": [0, 1, 2], "arms": {"harma": {}}, "storage": str(folder / "r")}))
    if paper is not None:
        (folder / f"{NAME}.paper.yaml").write_text(yaml.safe_dump(paper))
    return study


@pytest.fixture
def store(tmp_path):
    store = ResultsStore(tmp_path / "results")
    write_ablation(store, NAME, arms={"harma": 0.0}, extra_trials=False)
    return store


PAPER = {"study": NAME, "source": "a paper, Table 1", "split": "test", "metrics": {"r_mean": 40.0, "txt_r1": 20.5}}


def test_each_seed_against_the_paper(store, tmp_path):
    study = _study(tmp_path, PAPER)
    page = build_study_report(store, NAME, tmp_path / "out", spec=load_spec(study))
    rows = pd.read_csv(page.parent / "paper-vs-ours.csv")
    trials = store.read_trials(NAME).sort_values("seed")
    assert list(rows.columns) == ["arm", "seed", "trial_id", "metric", "paper", "ours", "difference"]
    assert sorted(rows["seed"]) == [0, 0, 1, 1, 2, 2] and set(rows["metric"]) == {"r_mean", "txt_r1"}
    for t in trials.itertuples():
        for metric, published in PAPER["metrics"].items():
            row = rows[(rows["seed"] == t.seed) & (rows["metric"] == metric)].iloc[0]
            ours = getattr(t, f"test_{metric}")
            assert (row["trial_id"], row["paper"]) == (t.trial_id, published)
            assert math.isclose(row["ours"], ours, abs_tol=1e-9)
            assert math.isclose(row["difference"], ours - published, abs_tol=1e-9)
    html = page.read_text()
    assert "Paper vs ours" in html and "a paper, Table 1" in html and "paper-vs-ours.csv" in html
    mean = trials["test_r_mean"].mean()
    assert f"{mean:.2f} ± " in html and f"{mean - 40.0:+.2f}" in html


def test_no_paper_file_no_section(store, tmp_path):
    page = build_study_report(store, NAME, tmp_path / "out", spec=load_spec(_study(tmp_path, None)))
    assert "Paper vs ours" not in page.read_text() and not (page.parent / "paper-vs-ours.csv").exists()


@pytest.mark.parametrize("change, message", [
    ({"study": "other"}, "study: expected 'reproduce-x' (the study it sits beside), got 'other'"),
    ({"split": "train"}, "split: expected test or val, got 'train'"),
    ({"metrics": {"mR": 52.3}}, "metrics.mR: expected one of txt_r1"),
    ({"metrics": {"r_mean": 152.3}}, "metrics.r_mean: expected a number in [0, 100], got 152.3"),
])
def test_a_bad_paper_file_is_one_error_naming_it(store, tmp_path, change, message):
    _study(tmp_path, {**PAPER, **change})
    with pytest.raises(SpecError) as exc:
        build_study_report(store, NAME, tmp_path / "out", spec=load_spec(tmp_path / f"{NAME}.yaml"))
    assert str(exc.value).startswith(f"{tmp_path / f'{NAME}.paper.yaml'}: ") and message in str(exc.value)
