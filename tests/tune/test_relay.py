"""The relay between a DDP trial's workers and Tune, and how a trial routes its errors, without starting Ray.

The relay's Ray queues are replaced by in-process queues: the worker side runs in the relay's fit thread as
Ray Train's rank 0 would, and the test's `report` plays Tune (it returns when Tune continues the trial and
never returns when Tune stops it)."""
from __future__ import annotations

import queue
import threading
import time

import pytest
import ray.util.queue

from harma.errors import CheckpointError, NonFiniteError, WriteError
from harma.tune import relay as relay_module
from harma.tune import trial as trial_module
from harma.tune.records import FAILURE_KEY, FAILURE_TYPE_KEY


class LocalQueue:
    """ray.util.queue.Queue's calls used by the relay, on a thread-safe local queue."""

    def __init__(self, actor_options=None):
        self._q = queue.Queue()

    def put(self, item):
        self._q.put(item)

    def get(self, timeout=None):
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            raise ray.util.queue.Empty from None

    def get_nowait(self):
        return self.get(timeout=0.001)


@pytest.fixture
def relay(monkeypatch):
    monkeypatch.setattr(ray.util.queue, "Queue", LocalQueue)
    monkeypatch.setattr(relay_module, "POLL_S", 0.05)
    return relay_module.Relay()


def _worker(relay, log, epochs=3):
    def fit():
        for epoch in range(1, epochs + 1):
            log.append(f"train {epoch}")
            relay.report({"epoch": epoch})
    return fit


def test_no_epoch_is_trained_before_tune_continued_the_last_one(relay):
    log = []

    def report(result):
        time.sleep(0.05)                                   # Tune takes its time deciding
        log.append(f"reported {result['epoch']}")

    relay.serve(_worker(relay, log), report=report)
    assert log == ["train 1", "reported 1", "train 2", "reported 2", "train 3", "reported 3"]


def test_a_trial_tune_stops_trains_nothing_past_the_stopping_epoch(relay):
    log, stopped = [], threading.Event()

    def report(result):
        log.append(f"reported {result['epoch']}")
        if result["epoch"] == 2:
            stopped.wait()                                 # Tune's STOP: report never returns

    server = threading.Thread(target=relay.serve, args=(_worker(relay, log),), kwargs={"report": report},
                              daemon=True)
    server.start()
    time.sleep(1.0)
    assert log == ["train 1", "reported 1", "train 2", "reported 2"]
    stopped.set()
    server.join(5)


def test_a_failure_is_reported_once_and_ends_the_relay(relay):
    seen = []

    def fit():
        relay.report({"epoch": 1})
        relay.fail({FAILURE_KEY: "NonFiniteError: loss is nan", "val_r_mean": float("nan")})

    relay.serve(fit, report=seen.append)
    assert [r.get("epoch", r.get(FAILURE_KEY)) for r in seen] == [1, "NonFiniteError: loss is nan"]


def test_an_error_of_fit_is_raised_in_the_trial_thread(relay):
    def fit():
        relay.report({"epoch": 1})
        raise RuntimeError("the worker group died")

    seen = []
    with pytest.raises(RuntimeError, match="worker group died"):
        relay.serve(fit, report=seen.append)
    assert seen == [{"epoch": 1}]


class _Study:
    name, kind, base_config = "s", "ablation", "synthetic-tiny"

    class resources:
        workers_per_trial, gpus_per_trial = 1, 0.0

    class objective:
        split, metric, mode = "val", "r_mean", "max"


@pytest.mark.parametrize("error", [NonFiniteError("epoch 2 step 5: loss is nan"),
                                   CheckpointError("checkpoint last.pt: cannot be loaded with weights_only=True")])
def test_an_error_a_rerun_cannot_cure_is_reported_never_raised_to_tune(monkeypatch, error):
    import ray.tune

    reports = []
    monkeypatch.setattr(ray.tune, "report", reports.append)
    monkeypatch.setattr(trial_module, "trial_run_config", lambda study, spec, root: None)
    monkeypatch.setattr(trial_module, "_train_in_process", lambda cfg, share: (_ for _ in ()).throw(error))
    trial_module.run_trial({"trial": trial_module.TrialSpec("t1", 1, {})}, _Study(), "runs", "ray")
    assert len(reports) == 1 and reports[0][FAILURE_TYPE_KEY] == type(error).__name__
    assert reports[0][FAILURE_KEY] == f"{type(error).__name__}: {error}"


def test_an_error_a_rerun_may_cure_goes_to_tune_for_a_retry(monkeypatch):
    import errno

    import ray.tune

    monkeypatch.setattr(ray.tune, "report", lambda result: pytest.fail("a curable error must not be reported"))
    monkeypatch.setattr(trial_module, "trial_run_config", lambda study, spec, root: None)
    full = WriteError(errno.ENOSPC, "No space left on device", "runs/s/t1/last.pt")
    monkeypatch.setattr(trial_module, "_train_in_process", lambda cfg, share: (_ for _ in ()).throw(full))
    with pytest.raises(WriteError):
        trial_module.run_trial({"trial": trial_module.TrialSpec("t1", 1, {})}, _Study(), "runs", "ray")
