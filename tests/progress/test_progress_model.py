"""The live view's state from events alone: rows of running trials (config in short, epoch k/N, last and best
objective, epochs/min), counts by status over earlier drivers' trials and this driver's, the best so far across
drivers (a FAILED trial's epochs leave it), at most one piece of news per trial per epoch (a resumed or retried
trial reports its epochs again), and the time left at the mean epoch time over the concurrent slots."""
from __future__ import annotations

import pytest

from harma.progress.events import (EpochReported, FinishedTrial, StudyBegan, StudyEnded, TrialEnded, TrialRetried,
                                   TrialStarted)
from harma.progress.model import Progress, short_config


def began(mode: str = "max", earlier=(), to_run: int = 4, concurrency: int = 2, early: bool = True) -> StudyBegan:
    return StudyBegan("st", "search", "val_r_mean", mode, to_run + len(earlier), to_run, concurrency, 3, early,
                      at=1000.0, earlier=tuple(earlier))


def epoch(tid: str, k: int, value: float, best: float, seconds: float = 6.0, at: float = 1010.0) -> EpochReported:
    return EpochReported(tid, k, 3, {"val": {"r_mean": value}}, value, best, seconds, at)


def test_rows_hold_each_running_trial():
    p = Progress(began())
    p.apply(TrialStarted("trial-0001", {"optim.lr": 0.0031622, "adapter.gate_init": 0.5, "train.seed": 1}, None,
                         1001.0))
    p.apply(TrialStarted("trial-0000", {"train.seed": 7}, None, 1001.0))
    p.apply(epoch("trial-0001", 1, 20.0, 20.0, seconds=12.0))
    p.apply(epoch("trial-0001", 2, 19.0, 20.0, seconds=10.0))
    rows = p.running()
    assert [r.trial_id for r in rows] == ["trial-0000", "trial-0001"]
    one = rows[1]
    assert (one.config, one.epoch, one.planned, one.last, one.best, one.epochs_per_min) == (
        "gate_init=0.5 lr=0.00316", 2, 3, 19.0, 20.0, 6.0)
    assert rows[0].config == "seed=7" and rows[0].epoch == 0 and rows[0].epochs_per_min is None


def test_short_config_names_the_arm_and_cuts_long_ones():
    assert short_config({"adapter.share": "both", "train.seed": 1}, "bishare-both") == "bishare-both"
    long = short_config({f"a.key{i}": 1000 + i for i in range(9)}, None)
    assert len(long) == 40 and long.endswith("…") and long.startswith("key0=1000 key1=1001")


def test_counts_span_earlier_drivers_and_pending_trials():
    earlier = [FinishedTrial("trial-0000", "COMPLETE", 30.0), FinishedTrial("trial-0001", "PRUNED", 10.0),
               FinishedTrial("trial-0002", "FAILED", None)]
    p = Progress(began(earlier=earlier, to_run=4))
    p.apply(TrialStarted("trial-0003", {}, None, 1001.0))
    p.apply(TrialStarted("trial-0004", {}, None, 1001.0))
    p.apply(TrialEnded("trial-0004", "PRUNED", 1005.0))
    assert p.counts() == {"RUNNING": 1, "COMPLETE": 1, "PRUNED": 2, "FAILED": 1, "pending": 2}


@pytest.mark.parametrize("mode, best", [("max", (30.0, "trial-0000")), ("min", (5.0, "trial-0004"))])
def test_the_best_so_far_counts_earlier_drivers_by_the_mode(mode, best):
    earlier = [FinishedTrial("trial-0000", "COMPLETE", 30.0), FinishedTrial("trial-0001", "FAILED", 99.0),
               FinishedTrial("trial-0002", "PRUNED", 12.0)]
    p = Progress(began(mode, earlier))
    p.apply(TrialStarted("trial-0004", {}, None, 1001.0))
    p.apply(epoch("trial-0004", 1, 5.0, 5.0))
    assert p.best() == best


def test_a_failed_trial_leaves_the_best_and_ties_go_to_the_smaller_id():
    p = Progress(began())
    for tid in ("trial-0002", "trial-0001"):
        p.apply(TrialStarted(tid, {}, None, 1001.0))
        p.apply(epoch(tid, 1, 40.0, 40.0))
    assert p.best() == (40.0, "trial-0001")
    p.apply(TrialEnded("trial-0001", "FAILED", 1020.0, "FloatingPointError: loss is nan"))
    assert p.best() == (40.0, "trial-0002")
    assert Progress(began()).best() is None


def test_an_epoch_reported_again_is_no_news():
    p = Progress(began())
    p.apply(TrialStarted("trial-0000", {}, None, 1001.0))
    news = [p.apply(epoch("trial-0000", k, 10.0 + k, 10.0 + k)) for k in (1, 2)]
    assert p.apply(TrialRetried("trial-0000", 1, 1030.0)) is True
    news += [p.apply(epoch("trial-0000", k, 10.0 + k, 10.0 + k)) for k in (1, 2, 3)]
    assert news == [True, True, False, False, True]
    assert p.running()[0].retries == 1 and p.epochs == 3


def test_time_left_is_the_mean_epoch_time_over_the_slots_and_none_before_an_epoch():
    p = Progress(began(to_run=4, concurrency=2))
    assert p.left() is None
    p.apply(TrialStarted("trial-0000", {}, None, 1001.0))
    p.apply(TrialStarted("trial-0001", {}, None, 1001.0))
    p.apply(epoch("trial-0000", 1, 1.0, 1.0, seconds=4.0))
    p.apply(epoch("trial-0001", 1, 1.0, 1.0, seconds=8.0))
    # running: 2 + 2 epochs left; 2 trials not started: 2 x 3 epochs; 10 epochs x 6 s / 2 slots
    assert p.remaining_epochs() == 10 and p.left() == pytest.approx(30.0)
    assert p.elapsed(1042.0) == 42.0
    p.apply(StudyEnded(1050.0))
    assert p.elapsed(2000.0) == 50.0
