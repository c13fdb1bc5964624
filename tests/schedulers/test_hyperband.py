"""Asynchronous Hyperband against hand-computed truth: each bracket's rungs, the bracket of a trial id (the same
in every process), decisions on a hand-made sequence of results, and the state rebuilt from an epochs table
equal to the state built live (no Ray)."""
from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from harma.schedulers.asha import AshaPolicy, AshaSpec
from harma.schedulers.base import CONTINUE, STOP, Observation, observations_from_epochs
from harma.schedulers.hyperband import HyperbandPolicy, HyperbandSpec, bracket_of, most_brackets

IDS = [f"trial-{i:04d}" for i in range(12)]
# zlib.crc32 of each id (1268803068, 1017599338, 2779645136, 3534304326, 1288544741, ...) modulo the count
BRACKET_OF_2 = [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1]
BRACKET_OF_3 = [0, 1, 2, 0, 2, 2, 0, 0, 2, 0, 2, 2]


@pytest.mark.parametrize("spec, rungs", [
    (HyperbandSpec(9, 1, 3, 3), [[1, 3], [3], []]),            # bracket 2 starts at 9 = max_epochs: stops nothing
    (HyperbandSpec(8, 1, 2, 4), [[1, 2, 4], [2, 4], [4], []]),
    (HyperbandSpec(80, 10, 3, 2), [[10, 30], [30]]),
    (HyperbandSpec(4, 1, 2, 1), [[1, 2]]),                      # one bracket: ASHA's rungs
])
def test_rung_epochs_per_bracket(spec, rungs):
    assert spec.bracket_rungs() == rungs


def test_most_brackets_start_at_or_below_max_epochs():
    assert most_brackets(9, 1, 3) == 3 and most_brackets(8, 1, 2) == 4
    assert most_brackets(80, 10, 3) == 2 and most_brackets(4, 4, 2) == 1 and most_brackets(3, 1, 2) == 2


def test_bracket_of_is_crc32_of_the_trial_id():
    assert [bracket_of(t, 2) for t in IDS] == BRACKET_OF_2
    assert [bracket_of(t, 3) for t in IDS] == BRACKET_OF_3
    assert {bracket_of(t, 1) for t in IDS} == {0}


@pytest.mark.parametrize("hash_seed", ["0", "1", "12345"])
def test_bracket_of_is_the_same_in_another_process(hash_seed):
    code = ("from harma.schedulers.hyperband import bracket_of; "
            "print([bracket_of(f'trial-{i:04d}', 3) for i in range(12)])")
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(BRACKET_OF_3)


# (trial id, epoch, value, decision) with max_epochs 4, grace 1, factor 2, 2 brackets: bracket 0 (trial-0000..3)
# has rungs 1 and 2, bracket 1 (trial-0004, -0005) only rung 2.
SEQUENCE = [
    ("trial-0000", 1, 10.0, CONTINUE),    # bracket 0, rung 1: nothing recorded yet
    ("trial-0004", 1, 1.0, CONTINUE),     # bracket 1 has no rung 1 (ASHA would stop it: below 10)
    ("trial-0001", 1, 5.0, STOP),         # bracket 0, rung 1: below the median of [10]
    ("trial-0004", 2, 2.0, CONTINUE),     # bracket 1, rung 2: nothing recorded yet
    ("trial-0005", 1, 50.0, CONTINUE),    # bracket 1: no rung 1
    ("trial-0005", 2, 1.5, STOP),         # bracket 1, rung 2: below [2.0]
    ("trial-0000", 2, 20.0, CONTINUE),    # bracket 0, rung 2: bracket 1's records do not count
    ("trial-0002", 1, 12.0, CONTINUE),    # above the median of [10, 5] = 7.5
    ("trial-0002", 2, 15.0, STOP),        # below [20]
    ("trial-0000", 3, 1.0, CONTINUE),     # no new rung
    ("trial-0004", 4, 3.0, STOP),         # max epochs
]
LIVE_RECORDS = [{1: {"trial-0000": 10.0, "trial-0001": 5.0, "trial-0002": 12.0},
                 2: {"trial-0000": 20.0, "trial-0002": 15.0}},
                {2: {"trial-0004": 2.0, "trial-0005": 1.5}}]
SPEC = HyperbandSpec(max_epochs=4, grace_period=1, reduction_factor=2, brackets=2)


def test_decisions_on_a_hand_made_sequence():
    hb = HyperbandPolicy(SPEC, "max")
    assert [hb.decide(t, e, v) for t, e, v, _ in SEQUENCE] == [d for *_, d in SEQUENCE]
    assert [b.records for b in hb.brackets] == LIVE_RECORDS


def test_min_mode_stops_the_higher_value():
    hb = HyperbandPolicy(SPEC, "min")
    assert hb.decide("trial-0004", 2, 2.0) == CONTINUE
    assert hb.decide("trial-0005", 2, 3.0) == STOP
    assert hb.decide("trial-0010", 2, 1.0) == CONTINUE      # bracket 1 too: lower is better


def epochs_frame(sequence) -> pd.DataFrame:
    """The epochs rows a run of `sequence` leaves: val r_mean as reported, plus rows the rebuild must skip."""
    rows = []
    for t, e, v, _ in sequence:
        rows += [(t, e, "val", "r_mean", v), (t, e, "test", "r_mean", -v), (t, e, "val", "txt_r1", v + 100)]
    return pd.DataFrame(rows, columns=["trial_id", "epoch", "split", "metric", "value"])


def test_state_rebuilt_from_epochs_equals_the_live_state():
    live = HyperbandPolicy(SPEC, "max")
    for t, e, v, _ in SEQUENCE:
        live.decide(t, e, v)
    rebuilt = HyperbandPolicy(SPEC, "max", observations_from_epochs(epochs_frame(SEQUENCE), "r_mean", "val"))
    assert [b.records for b in rebuilt.brackets] == [b.records for b in live.brackets] == LIVE_RECORDS
    more = [("trial-0001", 1, 5.0), ("trial-0003", 1, 8.0), ("trial-0010", 2, 2.5), ("trial-0011", 2, 1.0),
            ("trial-0008", 2, 18.0)]
    assert [rebuilt.decide(*r) for r in more] == [live.decide(*r) for r in more] == [
        CONTINUE,    # trial-0001 re-reports after a restart: recorded once already
        STOP,        # bracket 0 rung 1: below the median of [10, 5, 12]
        CONTINUE,    # bracket 1 rung 2: above the median of [2.0, 1.5] = 1.75
        STOP,        # below the median of [2.0, 1.5, 2.5] = 2.0
        CONTINUE]    # bracket 0 rung 2 (its highest rung reached): above the median of [20, 15] = 17.5


def test_one_bracket_decides_as_asha():
    results = [("a", 1, 10.0), ("b", 1, 5.0), ("c", 1, 12.0), ("a", 2, 20.0), ("c", 2, 15.0), ("d", 2, 30.0)]
    hb, asha = HyperbandPolicy(HyperbandSpec(4, 1, 2, 1), "max"), AshaPolicy(AshaSpec(4, 1, 2), "max")
    assert [hb.decide(*r) for r in results] == [asha.decide(*r) for r in results]
    assert hb.brackets[0].records == asha.rungs.records


def test_observations_load_only_at_their_brackets_rungs():
    hb = HyperbandPolicy(SPEC, "max", [Observation("trial-0004", 1, 7.0), Observation("trial-0000", 3, 7.0)])
    assert [b.records for b in hb.brackets] == [{1: {}, 2: {}}, {2: {}}]
