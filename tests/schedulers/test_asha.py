"""ASHA's policy against hand-worked rung records, and its records rebuilt from an epochs table (no Ray)."""
from __future__ import annotations

import pandas as pd

from harma.schedulers.asha import AshaPolicy, AshaSpec
from harma.schedulers.base import CONTINUE, STOP, observations_from_epochs
from harma.schedulers.rungs import rung_epochs


def test_rung_epochs():
    assert rung_epochs(4, 1, 2) == [1, 2]
    assert rung_epochs(80, 10, 3) == [10, 30]
    assert rung_epochs(9, 1, 3) == [1, 3]
    assert rung_epochs(9, 1, 3, skip=1) == [3] and rung_epochs(9, 1, 3, skip=2) == []
    assert rung_epochs(4, 4, 2) == []


def test_first_trial_continues_then_weak_trials_stop():
    asha = AshaPolicy(AshaSpec(max_epochs=4, grace_period=1, reduction_factor=2), "max")
    assert asha.decide("a", 1, 10.0) == CONTINUE          # nothing recorded yet
    assert asha.decide("b", 1, 5.0) == STOP               # below the median of [10]
    assert asha.decide("c", 1, 12.0) == CONTINUE          # above the median of [10, 5] = 7.5
    assert asha.decide("d", 1, 7.0) == STOP               # below the median of [10, 5, 12] = 10
    assert asha.decide("a", 2, 20.0) == CONTINUE
    assert asha.decide("c", 2, 15.0) == STOP              # below 20
    assert asha.decide("a", 4, 30.0) == STOP              # reached max epochs: done
    assert asha.rungs.records[1] == {"a": 10.0, "b": 5.0, "c": 12.0, "d": 7.0}


def test_min_mode_and_no_double_counting():
    asha = AshaPolicy(AshaSpec(max_epochs=9, grace_period=1, reduction_factor=3), "min")
    assert asha.decide("a", 1, 1.0) == CONTINUE
    assert asha.decide("b", 1, 2.0) == STOP               # loss above the lower third
    assert asha.decide("a", 2, 0.5) == CONTINUE           # already recorded at rung 1, rung 3 not reached
    assert list(asha.rungs.records[1]) == ["a", "b"]


def test_preloaded_rungs_count_and_restarted_trials_are_not_recorded_twice():
    epochs = pd.DataFrame({
        "trial_id": ["a", "a", "b", "b", "c"], "epoch": [1, 1, 1, 1, 1], "split": ["val", "test", "val", "val", "val"],
        "metric": ["r_mean", "r_mean", "r_mean", "txt_r1", "r_mean"], "value": [10.0, 99.0, 20.0, 1.0, 30.0]})
    recorded = observations_from_epochs(epochs, "r_mean", "val")
    assert [(o.trial_id, o.epoch, o.value) for o in recorded] == [("a", 1, 10.0), ("b", 1, 20.0), ("c", 1, 30.0)]
    asha = AshaPolicy(AshaSpec(4, 1, 2), "max", recorded)
    assert asha.rungs.records == {1: {"a": 10.0, "b": 20.0, "c": 30.0}, 2: {}}
    assert asha.decide("b", 1, 20.0) == CONTINUE          # b was recorded before the restart: no new record
    assert asha.decide("d", 1, 15.0) == STOP              # below the median of [10, 20, 30]
    assert len(asha.rungs.records[1]) == 4


def test_no_epochs_rebuild_nothing():
    assert observations_from_epochs(None, "r_mean", "val") == []
    assert observations_from_epochs(pd.DataFrame(), "r_mean", "val") == []
