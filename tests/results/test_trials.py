"""harma.results.trials, the owner of a trials row: statuses, missing values, overrides and best-first ranking
by each row's own objective and mode (two studies with opposite modes in one frame)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harma.results.schema import record_from_row
from harma.results.trials import best_first, is_missing, objective_label, row_overrides


def frame() -> pd.DataFrame:
    rows = [  # study, trial, status, objective, mode, val_r_mean, val_txt_r1
        ("a", "t1", "COMPLETE", "val_r_mean", "max", 30.0, 5.0),
        ("a", "t2", "COMPLETE", "val_r_mean", "max", 35.0, 1.0),
        ("a", "t3", "PRUNED", "val_r_mean", "max", 99.0, 0.0),
        ("b", "t1", "COMPLETE", "val_txt_r1", "min", 10.0, 7.0),
        ("b", "t2", "COMPLETE", "val_txt_r1", "min", 50.0, 2.0),
        ("b", "t3", "COMPLETE", "val_txt_r1", "min", 60.0, None),
        ("b", "t4", "FAILED", "val_txt_r1", "min", None, None),
        ("b", "t5", "COMPLETE", "val_txt_r1", "min", 1.0, 2.0),
    ]
    out = pd.DataFrame(rows, columns=["study", "trial_id", "status", "objective", "objective_mode", "val_r_mean",
                                      "val_txt_r1"])
    out["param.loss.gamma"] = [1.0, np.nan, 2.0, None, 3.0, None, None, None]
    out["param.adapter.share"] = pd.array(["both", None, None, None, "none", None, None, None], dtype="string")
    return out


def test_best_first_ranks_by_each_rows_objective_and_mode():
    ranked = best_first(frame())
    # a: max val_r_mean -> t2 (35) before t1 (30); b: min val_txt_r1 -> t2 (2) and t5 (2) tie, then t1 (7);
    # the two studies interleave by oriented score: 35, 30 | -2, -2, -7; PRUNED, FAILED and missing values out
    assert list(zip(ranked["study"], ranked["trial_id"])) == [("a", "t2"), ("a", "t1"), ("b", "t2"), ("b", "t5"),
                                                              ("b", "t1")]
    only_b = best_first(frame()[frame()["study"] == "b"])
    assert only_b["trial_id"].tolist() == ["t2", "t5", "t1"]
    assert best_first(frame(), statuses=("COMPLETE", "PRUNED"))["trial_id"].iloc[0] == "t3"
    assert objective_label(only_b) == "val txt_r1 (min)"
    with pytest.raises(ValueError, match="2 different objectives"):
        objective_label(frame())


def test_row_overrides_and_missing_values():
    rows = frame().to_dict("records")
    assert row_overrides(rows[0]) == {"adapter.share": "both", "loss.gamma": 1.0}
    assert row_overrides(frame().iloc[0]) == {"adapter.share": "both", "loss.gamma": 1.0}  # a pandas row too
    assert row_overrides(rows[1]) == {} and row_overrides(rows[4], skip=("loss.gamma",)) == {"adapter.share": "none"}
    assert all(is_missing(v) for v in (None, math.nan, pd.NA, pd.NaT, np.float64("nan")))
    assert not any(is_missing(v) for v in (0, 0.0, "", False, "NA"))


def test_a_row_read_back_is_a_record_again():
    row = {**frame().to_dict("records")[0], "schema_version": "2.0", "seed": pd.NA}
    record = record_from_row(row)
    assert record["params"] == {"adapter.share": "both", "loss.gamma": 1.0}
    assert "objective" not in record and "schema_version" not in record and "seed" not in record
    assert record["val_r_mean"] == 30.0 and type(record["val_r_mean"]) is float
