"""Cost axes that mean something without GPUs (GPU-hours, else CPU core-hours, else wall hours, always named),
trial numbers that match trial ids, and integer epoch ticks."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from fake_studies import write_search

from harma.report import build_study_report
from harma.report.cost import add_cost, best_so_far_by_cost, cost_basis
from harma.report.frames import trial_numbers
from harma.report.spec import StudySpec
from harma.results.store import ResultsStore

SPEC = StudySpec(name="s", source="studies/s.yaml", base_config="synthetic-tiny", base_set={}, cpus_per_trial=4.0)


def frame(gpu: list[float]) -> pd.DataFrame:
    n = len(gpu)
    return pd.DataFrame({"trial_id": [f"trial-{i:04d}" for i in range(n)], "status": ["COMPLETE"] * n,
                         "gpu_seconds": gpu, "wall_seconds": [1800.0 * (i + 1) for i in range(n)],
                         "val_r_mean": [10.0, 30.0, 20.0][:n], "objective": ["val_r_mean"] * n,
                         "objective_mode": ["max"] * n,
                         "finished_at": pd.to_datetime([f"2024-01-0{i + 1}" for i in range(n)], utc=True)})


def test_gpu_hours_when_any_trial_held_a_gpu():
    t = frame([0.0, 7200.0, 0.0])
    basis = cost_basis(t, SPEC)
    assert basis.label == "GPU-hours"
    assert add_cost(t, basis, SPEC)["cost_hours"].tolist() == [0.0, 2.0, 0.0]


def test_cpu_core_hours_without_gpus_and_wall_hours_without_a_study_file():
    t = frame([0.0, 0.0, 0.0])
    basis = cost_basis(t, SPEC)
    assert basis.label == "CPU core-hours" and "4 CPU(s)" in basis.how
    with_cost = add_cost(t, basis, SPEC)
    assert with_cost["cost_hours"].tolist() == [2.0, 4.0, 6.0]  # 0.5, 1, 1.5 h x 4 CPUs
    progress = best_so_far_by_cost(with_cost)
    assert progress["cumulative_cost_hours"].tolist() == [2.0, 6.0, 12.0]
    assert progress["best_so_far"].tolist() == [10.0, 30.0, 30.0]
    minimised = best_so_far_by_cost(with_cost.assign(objective_mode="min"))
    assert minimised["best_so_far"].tolist() == [10.0, 10.0, 10.0]   # the study's direction
    basis = cost_basis(t, None)
    assert basis.label == "wall-clock hours"
    assert add_cost(t, basis, None)["cost_hours"].tolist() == [0.5, 1.0, 1.5]


def test_trial_numbers_follow_trial_ids():
    assert trial_numbers(pd.Series(["trial-0003", "trial-0000", "trial-0010"])).tolist() == [3, 0, 10]
    assert trial_numbers(pd.Series(["a", "b-1", "c-1"])).tolist() == [0, 1, 2]  # no distinct numbers


def _figure(html: str, fid: str) -> dict:
    block = re.search(rf'<script type="application/json" data-plot-for="{fid}">(.*?)</script>', html, re.S)
    return json.loads(block.group(1))


def test_cpu_only_search_page_plots_core_hours_and_trial_ids(tmp_path):
    store = ResultsStore(tmp_path / "r")
    write_search(store, "cpu", gpus=0.0)  # the same study run on CPUs: no GPU seconds
    html = build_study_report(store, "cpu", tmp_path / "out", spec=SPEC).read_text()
    cost = _figure(html, "search-best-by-cost")
    assert cost["layout"]["xaxis"]["title"]["text"] == "cumulative CPU core-hours"
    assert max(cost["data"][1]["x"]) == pytest.approx(10 * 3300.0 * 4 / 3600)  # 10 trials, 55 min, 4 CPUs
    assert "GPU-hours" not in html and "CPU core-hours" in html
    by_trial = _figure(html, "search-best-by-trial")
    assert by_trial["data"][-1]["x"] == list(range(10))  # srch_00000 .. srch_00009
    stops = _figure(html, "search-stops")
    assert stops["layout"]["xaxis"]["dtick"] == 1 and stops["layout"]["xaxis"]["tickformat"] == "d"
