"""Tidy tables of the report on hand-made frames: preparation, arm summaries, paired differences with Holm,
learning curves, search progress, ASHA stops, Pareto, top-k overrides, Optuna importances."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harma.config import parse_override
from harma.report import arms, search
from harma.report.frames import arm_order, complete_per_seed, exclusion_text, prepare, status_counts
from harma.report.importance import param_importances
from harma.results.overrides import format_value, set_command

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def trials_frame(rows: list[dict]) -> pd.DataFrame:
    base = {"study": "s", "kind": "ablation", "arm": None, "seed": None, "status": "COMPLETE",
            "stop_epoch": None, "best_epoch": None, "gpu_seconds": 3600.0, "trainable_params": 100,
            "started_at": pd.NaT, "finished_at": pd.NaT, "val_r_mean": np.nan, "test_r_mean": np.nan,
            "objective": "val_r_mean", "objective_mode": "max"}
    frame = pd.DataFrame([{**base, **r} for r in rows])
    for col in ("seed", "stop_epoch", "best_epoch", "trainable_params"):
        frame[col] = frame[col].astype("Int64")
    for col in ("started_at", "finished_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def ablation_frame() -> pd.DataFrame:
    rows = []
    values = {"ref": [30.0, 31.0, 32.0], "a": [31.0, 33.5, 33.0, 40.0], "b": [29.0, 30.0]}
    for arm, vals in values.items():
        for seed, v in enumerate(vals):
            rows.append({"trial_id": f"{arm}{seed}", "arm": arm, "seed": seed, "val_r_mean": v,
                         "test_r_mean": v - 1, "finished_at": T0 + pd.Timedelta(hours=seed)})
    rows.append({"trial_id": "b9", "arm": "b", "seed": 2, "status": "FAILED"})
    return prepare(trials_frame(rows))


def test_status_counts_and_exclusion_text():
    t = ablation_frame()
    assert status_counts(t) == {"COMPLETE": 9, "PRUNED": 0, "FAILED": 1, "RUNNING": 0}
    assert exclusion_text(t) == "10 trials: 9 COMPLETE used; excluded 0 PRUNED, 1 FAILED, 0 RUNNING."


def test_complete_per_seed_keeps_last_finished_duplicate():
    t = prepare(trials_frame([
        {"trial_id": "x1", "arm": "a", "seed": 0, "val_r_mean": 1.0, "finished_at": T0},
        {"trial_id": "x2", "arm": "a", "seed": 0, "val_r_mean": 2.0, "finished_at": T0 + pd.Timedelta(hours=1)},
        {"trial_id": "x3", "arm": None, "seed": 1, "val_r_mean": 3.0, "status": "RUNNING"}]))
    done = complete_per_seed(t)
    assert done["trial_id"].tolist() == ["x2"]
    assert arm_order(["b", "harma", "a"], "harma") == ["harma", "a", "b"]
    assert arm_order(["b", "a"], "harma") == ["a", "b"]


def test_arm_summary_known_means_and_intervals():
    done = complete_per_seed(ablation_frame())
    summary = arms.arm_summary(done, ["ref", "a", "b"], metrics=("val_r_mean", "gpu_hours"))
    ref = summary[(summary["arm"] == "ref") & (summary["metric"] == "val_r_mean")].iloc[0]
    half = sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert ref["n"] == 3 and ref["mean"] == pytest.approx(31.0)
    assert (ref["ci_low"], ref["ci_high"]) == (pytest.approx(31 - half), pytest.approx(31 + half))
    b = summary[(summary["arm"] == "b") & (summary["metric"] == "val_r_mean")].iloc[0]
    assert b["n"] == 2 and b["mean"] == pytest.approx(29.5)  # the FAILED trial is left out
    gpu = summary[summary["metric"] == "gpu_hours"]
    assert gpu["mean"].tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_arm_summary_cuts_recall_intervals_to_0_100():
    rows = [{"trial_id": f"x{s}", "arm": "x", "seed": s, "val_r_mean": v, "test_r_mean": v}
            for s, v in enumerate([0.5, 4.5])]
    done = complete_per_seed(prepare(trials_frame(rows)))
    out = arms.arm_summary(done, ["x"], metrics=("val_r_mean", "gpu_hours")).set_index("metric")
    raw = sps.t.interval(0.95, 1, loc=2.5, scale=sps.sem([0.5, 4.5]))
    assert raw[0] < 0 and out.loc["val_r_mean", "ci_low"] == 0.0 and bool(out.loc["val_r_mean", "clipped"])
    assert out.loc["val_r_mean", "ci_high"] == pytest.approx(raw[1])
    assert not bool(out.loc["gpu_hours", "clipped"])  # not a percentage: left alone


def test_paired_differences_match_scipy_and_hand_holm():
    done = complete_per_seed(ablation_frame())
    diffs = arms.paired_differences(done, ["ref", "a", "b"], "ref", metrics=("val_r_mean",))
    a = diffs[diffs["arm"] == "a"].iloc[0]
    b = diffs[diffs["arm"] == "b"].iloc[0]
    # a pairs on seeds 0, 1, 2 (seed 3 has no reference); b on seeds 0, 1 only
    assert (a["n_pairs"], a["seeds"], b["n_pairs"], b["seeds"]) == (3, "0 1 2", 2, "0 1")
    assert a["mean_diff"] == pytest.approx(np.mean([1.0, 2.5, 1.0]))
    p_a = sps.ttest_rel([31.0, 33.5, 33.0], [30.0, 31.0, 32.0]).pvalue
    assert a["test"] == "paired t" and a["p_value"] == pytest.approx(p_a)
    assert b["test"] == "none" and b["note"].startswith("2 seeds: no test")  # 2 pairs: no p-value
    assert a["p_holm"] == pytest.approx(p_a)  # only one finite p-value in the family
    lo, hi = sps.t.interval(0.95, 2, loc=np.mean([1, 2.5, 1]), scale=sps.sem([1, 2.5, 1]))
    assert (a["ci_low"], a["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))


def test_paired_holm_across_arms_per_metric():
    rng = np.random.default_rng(0)
    rows = []
    for arm, shift in (("ref", 0.0), ("x", 1.0), ("y", 0.3)):
        for seed in range(4):
            rows.append({"trial_id": f"{arm}{seed}", "arm": arm, "seed": seed,
                         "val_r_mean": 30 + shift + rng.normal(0, 0.5), "test_r_mean": 20 + rng.normal()})
    done = complete_per_seed(prepare(trials_frame(rows)))
    diffs = arms.paired_differences(done, ["ref", "x", "y"], "ref", metrics=("val_r_mean", "test_r_mean"))
    for metric in ("val_r_mean", "test_r_mean"):
        block = diffs[diffs["metric"] == metric]
        p = block["p_value"].to_numpy()
        lo, hi = sorted(p)
        expected = {lo: min(1, 2 * lo), hi: max(min(1, 2 * lo), min(1, hi))}
        assert block["p_holm"].tolist() == pytest.approx([expected[v] for v in p])


def test_single_seed_means_no_test():
    rows = [{"trial_id": f"{a}", "arm": a, "seed": 0, "val_r_mean": v} for a, v in (("ref", 1.0), ("z", 2.0))]
    done = complete_per_seed(prepare(trials_frame(rows)))
    diffs = arms.paired_differences(done, ["ref", "z"], "ref", metrics=("val_r_mean",))
    assert diffs["test"].tolist() == ["none"] and diffs["note"].iloc[0].startswith("1 seed: no test")
    assert math.isnan(diffs["p_holm"].iloc[0])


def test_learning_curves_mean_and_band():
    done = complete_per_seed(ablation_frame())
    epochs = pd.DataFrame([
        {"trial_id": t, "epoch": e, "split": "val", "metric": "r_mean", "value": v}
        for t, e, v in (("ref0", 1, 10.0), ("ref1", 1, 14.0), ("ref0", 2, 20.0), ("a0", 1, 5.0),
                        ("b9", 1, 99.0))] + [{"trial_id": "ref0", "epoch": 1, "split": "train", "metric": "loss",
                                               "value": 3.0}])
    curves = arms.learning_curves(done, epochs, ["ref", "a", "b"])
    assert curves.values.tolist() == [["ref", 1, 2, 12.0, 10.0, 14.0], ["ref", 2, 1, 20.0, 20.0, 20.0],
                                      ["a", 1, 1, 5.0, 5.0, 5.0]]


def search_frame() -> pd.DataFrame:
    spec = [  # id, status, objective, stop, gpu hours, params
        ("t0", "COMPLETE", 30.0, 8, 2.0, 64, 1.5), ("t1", "PRUNED", 33.0, 2, 0.5, 32, 0.5),
        ("t2", "COMPLETE", 35.0, 8, 1.0, 128, 2.0), ("t3", "FAILED", None, 1, 0.25, 16, 1.0),
        ("t4", "COMPLETE", 34.0, 8, 3.0, 16, 2.5), ("t5", "RUNNING", None, 3, None, 64, 1.0),
        ("t6", "PRUNED", 20.0, 4, 1.0, 32, 3.0)]
    rows = []
    for i, (tid, status, obj, stop, gpu, b, g) in enumerate(spec):
        rows.append({"trial_id": tid, "kind": "search", "status": status, "val_r_mean": obj,
                     "test_r_mean": None if obj is None else obj - 2, "stop_epoch": stop,
                     "gpu_seconds": None if gpu is None else gpu * 3600, "trainable_params": b * 1000,
                     "started_at": T0 + pd.Timedelta(minutes=i),
                     "finished_at": None if status == "RUNNING" else T0 + pd.Timedelta(hours=10 - i),
                     "param.adapter.bottleneck": b, "param.loss.gamma": g, "param.adapter.share": "bishare"})
    frame = trials_frame(rows)
    frame["param.adapter.bottleneck"] = frame["param.adapter.bottleneck"].astype("Int64")
    return prepare(frame)


def test_best_so_far_by_trial_counts_complete_only():
    t = search.best_so_far_by_trial(search_frame())
    assert t["trial_number"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert t["best_so_far"].tolist() == [30.0, 30.0, 35.0, 35.0, 35.0, 35.0, 35.0]  # PRUNED 33 not counted


def test_best_so_far_by_gpu_hours_in_finish_order():
    from harma.report.cost import add_cost, best_so_far_by_cost, cost_basis

    frame = search_frame()
    frame["wall_seconds"] = frame["gpu_seconds"]    # one GPU per trial
    basis = cost_basis(frame, None)
    assert basis.label == "GPU-hours"
    t = best_so_far_by_cost(add_cost(frame, basis, None))
    assert t["trial_id"].tolist() == ["t6", "t4", "t3", "t2", "t1", "t0"]  # finished last-started first
    assert t["cumulative_cost_hours"].tolist() == pytest.approx([1.0, 4.0, 4.25, 5.25, 5.75, 7.75])
    assert t["best_so_far"].tolist()[0] != t["best_so_far"].tolist()[0]  # NaN before the first COMPLETE
    assert t["best_so_far"].tolist()[1:] == [34.0, 34.0, 35.0, 35.0, 35.0]


def test_asha_rungs_and_stop_counts():
    t = search_frame()
    assert search.rungs(t) == [2, 4]
    counts = search.stop_counts(t)
    assert counts.values.tolist() == [[1, "FAILED", 1], [2, "PRUNED", 1], [3, "RUNNING", 1], [4, "PRUNED", 1],
                                      [8, "COMPLETE", 3]]


def test_pareto_and_top_k():
    t = search_frame()
    front = search.pareto_table(t, "gpu_hours")
    assert dict(zip(front["trial_id"], front["on_front"])) == {"t2": True, "t0": False, "t4": False}
    top = search.top_k(t, ["param.adapter.bottleneck", "param.loss.gamma"], k=2)
    assert top["trial_id"].tolist() == ["t2", "t4"] and top["rank"].tolist() == [1, 2]
    assert top["overrides"].iloc[0] == ("--set adapter.bottleneck=128 adapter.share=bishare "
                                        "loss.gamma=2.0")
    assert search.observed(t)["trial_id"].tolist() == ["t0", "t1", "t2", "t4", "t6"]


@pytest.mark.parametrize("value", [64, 1.5, 1e-05, 2.5e-4, 3.0, True, False, "bishare", "yes", "1.5", "null",
                                   "a b", "x: y"])
def test_override_values_parse_back(value):
    key, parsed = parse_override(f"k.v={format_value(value)}")
    assert parsed == value and type(parsed) is type(value)


def test_set_command_quotes_for_the_shell():
    import shlex

    cmd = set_command({"adapter.share": "a b", "loss.gamma": 1.5, "x.none": None, "x.na": float("nan")})
    assert cmd == "--set 'adapter.share=a b' loss.gamma=1.5"
    assert parse_override(shlex.split(cmd)[1]) == ("adapter.share", "a b")
    assert set_command({}) == ""


def test_importances_are_read_from_parquet_only(fake_root, tmp_path):
    store, _ = fake_root
    frame, why = param_importances(store.root, "srch")
    assert frame is not None and "PedAnovaImportanceEvaluator" in why and "over the 6 COMPLETE trials" in why
    assert set(frame["param"]) <= {"adapter.bottleneck", "loss.gamma", "optim.lr", "adapter.share"}
    assert frame["importance"].sum() == pytest.approx(1.0)
    assert frame["importance"].is_monotonic_decreasing
    frame, why = param_importances(store.root, "abl")
    assert frame is None and "none were computed" in why
    frame, why = param_importances(None, "srch")
    assert frame is None and "unavailable" in why
