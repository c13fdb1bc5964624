"""The one Tune adapter of every scheduler: it asks the study's policy about each epoch result, keyed by the
harma trial id, ignores results without an epoch, and on resume rebuilds the policy from the epochs table."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

pytest.importorskip("ray")
from ray.tune.schedulers import FIFOScheduler, TrialScheduler  # noqa: E402

from harma.schedulers.asha import AshaPolicy, AshaSpec  # noqa: E402
from harma.schedulers.hyperband import HyperbandPolicy  # noqa: E402
from harma.schedulers.none import RunToEnd  # noqa: E402
from harma.study.parse import parse_study  # noqa: E402
from harma.tune import runner  # noqa: E402
from harma.tune.records import TRIAL_KEY, TrialSpec  # noqa: E402
from harma.tune.scheduler import PolicyScheduler, tune_scheduler  # noqa: E402

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def trial(trial_id: str) -> SimpleNamespace:
    return SimpleNamespace(config={TRIAL_KEY: TrialSpec(trial_id, 0, {})}, trial_id=f"ray-{trial_id}")


def test_the_policy_decides_on_epoch_results_by_harma_trial_id():
    sched = PolicyScheduler("val_r_mean", AshaPolicy(AshaSpec(4, 1, 2), "max"))
    assert isinstance(sched, FIFOScheduler)
    assert sched.on_trial_result(None, trial("a"), {"epoch": 1, "val_r_mean": 10.0}) == TrialScheduler.CONTINUE
    assert sched.on_trial_result(None, trial("b"), {"val_r_mean": 1.0}) == TrialScheduler.CONTINUE   # no epoch
    assert sched.on_trial_result(None, trial("b"), {"epoch": 1, "loss": 1.0}) == TrialScheduler.CONTINUE
    assert sched.policy.rungs.records[1] == {"a": 10.0}
    assert sched.on_trial_result(None, trial("b"), {"epoch": 1, "val_r_mean": 5.0}) == TrialScheduler.STOP
    assert sched.on_trial_result(None, trial("a"), {"epoch": 4, "val_r_mean": 9.0}) == TrialScheduler.STOP
    assert "rung 1: 2 recorded" in sched.debug_string()


def smoke(scheduler: dict | None, objective: dict | None = None):
    data = yaml.safe_load((STUDIES / "smoke.yaml").read_text())
    data["scheduler"] = scheduler
    if objective:
        data["objective"] = objective
    return parse_study(data, source="smoke.yaml", folder=STUDIES)


EPOCHS = pd.DataFrame({"trial_id": ["trial-0000", "trial-0004", "trial-0000"], "epoch": [2, 2, 2],
                       "split": ["val", "val", "val"], "metric": ["r_mean", "r_mean", "txt_r1"],
                       "value": [20.0, 2.0, 5.0]})


def test_hyperband_is_rebuilt_per_bracket_on_resume():
    study = smoke({"type": "hyperband", "max_epochs": 4, "grace_period": 1, "reduction_factor": 2, "brackets": 2})
    sched = tune_scheduler(study, EPOCHS)
    assert isinstance(sched.policy, HyperbandPolicy) and sched._metric_name == "val_r_mean"
    assert [b.records for b in sched.policy.brackets] == [{1: {}, 2: {"trial-0000": 20.0}},
                                                          {2: {"trial-0004": 2.0}}]
    assert [b.records for b in tune_scheduler(study).policy.brackets] == [{1: {}, 2: {}}, {2: {}}]


def test_the_objective_names_the_metric_read_and_rebuilt():
    study = smoke({"type": "asha", "max_epochs": 4}, {"metric": "txt_r1", "mode": "min"})
    sched = tune_scheduler(study, EPOCHS)
    assert sched._metric_name == "val_txt_r1" and sched.policy.rungs.records[2] == {"trial-0000": 5.0}
    assert sched.policy.rungs.mode == "min"


class _Store:
    def __init__(self) -> None:
        self.reads = 0

    def read_epochs(self, name: str) -> pd.DataFrame:
        self.reads += 1
        return EPOCHS


@pytest.mark.parametrize("scheduler, policy, reads", [
    (None, RunToEnd, 0), ({"type": "asha"}, AshaPolicy, 1), ({"type": "hyperband", "brackets": 2}, HyperbandPolicy, 1)])
def test_the_runner_builds_every_scheduler_the_same_way(scheduler, policy, reads):
    store = _Store()
    sched = runner._scheduler(smoke(scheduler), store, resume=True)
    assert isinstance(sched, PolicyScheduler) and isinstance(sched.policy, policy) and store.reads == reads
    runner._scheduler(smoke(scheduler), store, resume=False)
    assert store.reads == reads                      # a new run reads no epochs
