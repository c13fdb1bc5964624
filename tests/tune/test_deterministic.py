"""Deterministic studies without Ray: the Tune scheduler holds a result (NOOP) and later continues or stops the
held trial through Tune's controller; the searcher asks trial k only once trials 0 .. k - concurrency are told,
tells in trial order, and so asks the same configs whatever order trials end in (while the asynchronous
searcher does not)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

pytest.importorskip("ray")
from ray.tune.schedulers import TrialScheduler  # noqa: E402

from harma.schedulers.asha import AshaPolicy, AshaSpec  # noqa: E402
from harma.study.parse import load_study  # noqa: E402
from harma.tune.records import TRIAL_KEY, TrialSpec  # noqa: E402
from harma.tune.scheduler import PolicyScheduler, check_tune_continues, tune_scheduler  # noqa: E402
from harma.tune.searcher import OptunaAskTellSearcher, TellOrder  # noqa: E402


def trial(trial_id: str) -> SimpleNamespace:
    return SimpleNamespace(config={TRIAL_KEY: TrialSpec(trial_id, 0, {})}, trial_id=f"ray-{trial_id}")


class Controller:
    """Records what the scheduler asks of Tune's controller."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def stop_trial(self, t) -> None:
        self.calls.append(("stop", t.config[TRIAL_KEY].trial_id))

    def _schedule_trial_train(self, t) -> None:
        self.calls.append(("continue", t.config[TRIAL_KEY].trial_id))


def test_a_held_result_waits_then_tune_continues_or_stops_the_trial():
    sched, tc = PolicyScheduler("val_r_mean", AshaPolicy(AshaSpec(4, 1, 2), "max"), ordered=True), Controller()
    a, b, c = trial("a"), trial("b"), trial("c")
    for t in (a, b, c):
        sched.on_trial_add(tc, t)
    assert sched.on_trial_result(tc, c, {"epoch": 1, "val_r_mean": 10.5}) == TrialScheduler.NOOP
    assert sched.on_trial_result(tc, b, {"epoch": 1, "val_r_mean": 12.0}) == TrialScheduler.NOOP
    assert tc.calls == []
    assert sched.on_trial_result(tc, a, {"epoch": 1, "val_r_mean": 10.0}) == TrialScheduler.CONTINUE
    assert tc.calls == [("continue", "b"), ("stop", "c")]
    assert sched.on_trial_result(tc, b, {"epoch": 3, "val_r_mean": 1.0}) == TrialScheduler.CONTINUE


def test_an_ended_trial_releases_the_ones_waiting_for_it():
    sched, tc = PolicyScheduler("val_r_mean", AshaPolicy(AshaSpec(4, 1, 2), "max"), ordered=True), Controller()
    a, b = trial("a"), trial("b")
    sched.on_trial_add(tc, a), sched.on_trial_add(tc, b)
    assert sched.on_trial_result(tc, b, {"epoch": 1, "val_r_mean": 3.0}) == TrialScheduler.NOOP
    sched.on_trial_error(tc, a)
    assert tc.calls == [("continue", "b")]


def test_the_smoke_study_is_deterministic_and_this_ray_can_continue_a_held_trial():
    check_tune_continues()
    assert tune_scheduler(load_study("studies/smoke.yaml")).ordered is not None


def test_tell_order_tells_exactly_the_trials_the_next_ask_needs():
    told, order = [], TellOrder(concurrency=2)
    tell = lambda tid, result, error: told.append(tid)          # noqa: E731
    assert order.may_ask(tell) and order.asked.append("t0") is None
    assert order.may_ask(tell) and order.asked.append("t1") is None     # 2 may run before any is told
    order.finals["t1"] = ({}, False)
    assert not order.may_ask(tell) and told == []                   # t2 needs t0 told, and t1 must wait
    order.finals["t0"] = ({}, False)
    assert order.may_ask(tell) and told == ["t0"]                   # t1 ended too, but t2 sees it running
    order.asked.append("t2")
    assert order.tell_through(3, tell) is False and told == ["t0", "t1"]


def simulate(study, finish_last_first: bool) -> list[dict]:
    """Run the searcher with 2 trials at once to its end; each trial ends after 2 epochs with a value made of
    its parameters; the running trial that ends first is the older one or the newer one."""
    searcher = OptunaAskTellSearcher(study, "val_r_mean", concurrency=2)
    running, asked, n = [], [], 0
    while True:
        while len(running) < 2:
            config = searcher.suggest(f"tune-{n}")
            if config is None or config == "FINISHED":
                break
            running.append((f"tune-{n}", config[TRIAL_KEY]))
            asked.append(dict(config[TRIAL_KEY].overrides))
            n += 1
        if not running:
            return asked
        tid, spec = running.pop(-1 if finish_last_first else 0)
        value = 50 - 100 * abs(spec.overrides["optim.lr"] - 0.003) - spec.overrides["adapter.gate_init"]
        for epoch in (1, 2):
            searcher.on_trial_result(tid, {"epoch": epoch, "planned_epochs": 2, "val_r_mean": value + epoch})
        searcher.on_trial_complete(tid, {"epoch": 2, "planned_epochs": 2, "val_r_mean": value + 2,
                                         "best_val_r_mean": value + 2})


@pytest.mark.parametrize("deterministic", [True, False])
def test_the_asks_depend_on_the_end_order_only_when_asynchronous(tmp_path, deterministic):
    smoke = load_study("studies/smoke.yaml")
    runs = []
    for finish_last_first in (False, True):
        study = dataclasses.replace(smoke, storage=str(tmp_path / f"{deterministic}-{finish_last_first}"),
                                    num_samples=9,
                                    scheduler=dataclasses.replace(smoke.scheduler, deterministic=deterministic))
        runs.append(simulate(study, finish_last_first))
    assert len(runs[0]) == len(runs[1]) == 9
    assert (runs[0] == runs[1]) is deterministic


def test_resume_tells_optuna_the_trials_parquet_finished_and_reruns_only_the_rest(tmp_path):
    import optuna

    from harma.tune.searcher import tell_recorded

    smoke = load_study("studies/smoke.yaml")
    study = dataclasses.replace(smoke, storage=str(tmp_path), num_samples=3)
    first = OptunaAskTellSearcher(study, "val_r_mean", concurrency=3)
    asked = [first.suggest(f"t{i}")[TRIAL_KEY].trial_id for i in range(3)]
    assert asked == ["trial-0000", "trial-0001", "trial-0002"]     # the driver dies here, nothing told
    rows = [{"trial_id": "trial-0000", "status": "COMPLETE", "val_r_mean": 30.0},
            {"trial_id": "trial-0001", "status": "PRUNED", "val_r_mean": 5.0},
            {"trial_id": "trial-0002", "status": "RUNNING", "val_r_mean": None}]
    curves = {"trial-0000": {1: 20.0, 2: 30.0}, "trial-0001": {1: 5.0}}
    assert tell_recorded(first.optuna_study, rows, curves, "val_r_mean") == ["trial-0000", "trial-0001"]
    trials = optuna.load_study(study_name="smoke", storage=study.optuna_storage_url()).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "RUNNING"]
    assert trials[0].value == 30.0 and trials[1].intermediate_values == {1: 5.0}
    again = OptunaAskTellSearcher(study, "val_r_mean", resume_unfinished=True, concurrency=3)
    assert again.total == 1 and again.suggest("t9")[TRIAL_KEY].trial_id == "trial-0002"


def test_a_ray_that_cannot_continue_a_held_trial_is_refused_before_trials_start(monkeypatch):
    from ray.tune.execution.tune_controller import TuneController

    from harma.errors import StudyError

    monkeypatch.delattr(TuneController, "_schedule_trial_train")
    with pytest.raises(StudyError, match=r"scheduler.deterministic needs ray.tune's TuneController._schedule_"
                                         r"trial_train, which Ray \S+ lacks; set scheduler.deterministic: false"):
        tune_scheduler(load_study("studies/smoke.yaml"))
