"""Decisions in trial order: whatever order epoch results arrive in, the wrapped policy decides every rung in
registration order, exactly as if the results had come one trial after another; a trial waits only for earlier
trials that share its epoch and have not been decided there, finished or been stopped."""
from __future__ import annotations

import itertools

import pytest

from harma.schedulers.asha import AshaPolicy, AshaSpec
from harma.schedulers.base import CONTINUE, STOP
from harma.schedulers.hyperband import HyperbandPolicy, HyperbandSpec, bracket_of
from harma.schedulers.none import RunToEnd
from harma.schedulers.ordered import OrderedDecisions

RUNG1 = {"a": 10.0, "b": 12.0, "c": 10.5}      # by id: a CONTINUE, b CONTINUE, c STOP (below the median 11)


def asha() -> AshaPolicy:
    return AshaPolicy(AshaSpec(max_epochs=4, grace_period=1, reduction_factor=2), "max")


def test_plain_asha_depends_on_the_arrival_order():
    first, second = asha(), asha()
    assert [first.decide(t, 1, RUNG1[t]) for t in "abc"] == [CONTINUE, CONTINUE, STOP]
    assert [second.decide(t, 1, RUNG1[t]) for t in "cba"] == [CONTINUE, CONTINUE, STOP]   # now a stops


@pytest.mark.parametrize("arrival", list(itertools.permutations("abc")), ids="".join)
def test_every_arrival_order_gives_the_decisions_of_id_order(arrival):
    ordered = OrderedDecisions(asha())
    for tid in "abc":
        ordered.add(tid)
    released = []
    for tid in arrival:
        released += ordered.report(tid, 1, RUNG1[tid])
    assert released == [("a", CONTINUE), ("b", CONTINUE), ("c", STOP)]
    assert list(ordered.inner.rungs.records[1]) == ["a", "b", "c"]
    assert ordered.holding() == {}


def test_a_later_trial_waits_and_is_released_by_the_earlier_one():
    ordered = OrderedDecisions(asha())
    ordered.add("a"), ordered.add("b")
    assert ordered.report("b", 1, 5.0) == [] and ordered.holding() == {"b": 1}
    assert ordered.report("a", 1, 10.0) == [("a", CONTINUE), ("b", STOP)]


def test_an_epoch_that_is_no_rung_is_decided_at_once():
    ordered = OrderedDecisions(asha())
    ordered.add("a"), ordered.add("b")
    assert ordered.inner.shared_epochs("b") == frozenset({1, 2})
    assert ordered.report("b", 3, 1.0) == [("b", CONTINUE)]        # epoch 3: not a rung
    assert ordered.report("b", 4, 1.0) == [("b", STOP)]            # max_epochs: done, whatever the others


def test_finished_and_stopped_trials_leave_later_cohorts():
    ordered = OrderedDecisions(asha())
    for tid in "abc":
        ordered.add(tid)
    assert ordered.report("c", 1, 1.0) == []
    assert ordered.finish("a") == []                  # a failed before epoch 1: c still waits for b
    assert ordered.report("b", 1, 9.0) == [("b", CONTINUE), ("c", STOP)]
    assert ordered.report("c", 2, 1.0) == [("c", STOP)]            # stopped already: a late result stops again
    assert ordered.report("b", 2, 3.0) == [("b", CONTINUE)]        # c was stopped at rung 1: b does not wait
    assert ordered.finish("b") == [] and ordered.finish("c") == []


def test_a_retried_trial_keeps_its_place():
    ordered = OrderedDecisions(asha())
    ordered.add("a"), ordered.add("b"), ordered.add("a")
    assert ordered.report("b", 1, 1.0) == []
    assert ordered.report("a", 1, 2.0) == [("a", CONTINUE), ("b", STOP)]


def test_no_early_stopping_never_holds():
    ordered = OrderedDecisions(RunToEnd())
    ordered.add("a"), ordered.add("b")
    assert ordered.report("b", 1, 1.0) == [("b", CONTINUE)]


def test_hyperband_waits_only_for_trials_whose_bracket_shares_the_epoch():
    spec = HyperbandSpec(max_epochs=4, grace_period=1, reduction_factor=2, brackets=2)   # rungs [1, 2] and [2]
    ids = [f"t{i}" for i in range(40)]
    early = next(t for t in ids if bracket_of(t, 2) == 1)          # rungs [2] only
    late = next(t for t in ids[ids.index(early) + 1:] if bracket_of(t, 2) == 0)
    ordered = OrderedDecisions(HyperbandPolicy(spec, "max"))
    ordered.add(early), ordered.add(late)
    assert ordered.report(late, 1, 5.0) == [(late, CONTINUE)]      # the earlier trial has no rung at epoch 1
    assert ordered.report(late, 2, 5.0) == []                      # ... but has one at epoch 2
    assert ordered.report(early, 2, 9.0) == [(early, CONTINUE), (late, CONTINUE)]   # each bracket: first record
    assert ordered.finish(early) == []
