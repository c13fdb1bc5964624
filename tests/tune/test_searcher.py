"""The ask/tell searcher: ASHA-stopped trials reach Optuna as PRUNED with their last epoch, finished ones as
COMPLETE, errors as FAIL; on resume the RUNNING Optuna trials are handed out again first."""
from __future__ import annotations

import dataclasses

import optuna
import pytest

pytest.importorskip("ray")

from harma.tune.records import TRIAL_KEY  # noqa: E402
from harma.tune.searcher import OptunaAskTellSearcher  # noqa: E402
from harma.study.parse import load_study  # noqa: E402


@pytest.fixture
def smoke(tmp_path):
    study = load_study("studies/smoke.yaml")          # asynchronous here: the deterministic order has its own tests
    return dataclasses.replace(study, storage=str(tmp_path / "results"), num_samples=4,
                               scheduler=dataclasses.replace(study.scheduler, deterministic=False))


def result(epoch, value, planned=4, best=None):
    """A flattened epoch result: this epoch's value and the value at the best epoch so far."""
    return {"epoch": epoch, "planned_epochs": planned, "val_r_mean": value,
            "best_val_r_mean": value if best is None else best}


def test_states_reach_optuna(smoke):
    searcher = OptunaAskTellSearcher(smoke, "val_r_mean")
    configs = {tid: searcher.suggest(tid) for tid in ("t1", "t2", "t3")}
    assert {c[TRIAL_KEY].trial_id for c in configs.values()} == {"trial-0000", "trial-0001", "trial-0002"}
    for cfg in configs.values():
        smoke.run_config(cfg[TRIAL_KEY].overrides)          # every suggestion is a valid run config
    searcher.on_trial_result("t1", result(1, 10.0))
    searcher.on_trial_complete("t1", result(2, 12.0))        # ASHA stopped it on its epoch-2 result
    values = [21.0, 26.5, 23.0, 24.0]                         # its best epoch (2) beats its last (4)
    for e, v in enumerate(values, start=1):
        searcher.on_trial_result("t2", result(e, v, best=max(values[:e])))
    searcher.on_trial_complete("t2", result(4, 24.0, best=26.5))
    searcher.on_trial_complete("t3", result(1, 5.0), error=True)
    trials = optuna.load_study(study_name="smoke", storage=smoke.optuna_storage_url()).get_trials()
    by_number = {t.number: t for t in trials}
    assert by_number[0].state == optuna.trial.TrialState.PRUNED
    assert by_number[0].last_step == 2 and by_number[0].intermediate_values == {1: 10.0, 2: 12.0}
    assert by_number[1].state == optuna.trial.TrialState.COMPLETE and by_number[1].value == 26.5  # = Parquet
    assert by_number[2].state == optuna.trial.TrialState.FAIL
    assert by_number[1].user_attrs == {"harma_trial_id": "trial-0001", "arm": None, "seed": smoke.seeds[0]}
    assert optuna.load_study(study_name="smoke", storage=smoke.optuna_storage_url()).metric_names == ["val_r_mean"]
    assert searcher.suggest("t4")[TRIAL_KEY].trial_id == "trial-0003"
    assert searcher.suggest("t5") == "FINISHED"


def test_resume_hands_out_running_trials_first(smoke):
    first = OptunaAskTellSearcher(smoke, "val_r_mean")
    a = first.suggest("x1")[TRIAL_KEY]
    b = first.suggest("x2")[TRIAL_KEY]
    first.on_trial_complete("x1", result(4, 30.0))
    # the driver dies with trial-0001 RUNNING; a new searcher resumes
    again = OptunaAskTellSearcher(smoke, "val_r_mean", resume_unfinished=True)
    assert again.total == 3                                   # 1 rerun + 2 new to reach num_samples=4
    rerun = again.suggest("y1")[TRIAL_KEY]
    assert rerun.trial_id == b.trial_id and rerun.overrides == b.overrides
    assert again.suggest("y2")[TRIAL_KEY].trial_id == "trial-0002"
    again.on_trial_complete("y1", result(4, 31.0))
    states = {t.number: t.state for t in optuna.load_study(study_name="smoke",
                                                           storage=smoke.optuna_storage_url()).get_trials()}
    assert states[1] == optuna.trial.TrialState.COMPLETE and a.trial_id == "trial-0000"


def _params(smoke):
    trials = optuna.load_study(study_name="smoke", storage=smoke.optuna_storage_url()).get_trials()
    return [tuple(sorted(t.params.items())) for t in sorted(trials, key=lambda t: t.number)]


@pytest.mark.parametrize("killed_after", [1, 2, 3])
def test_a_resumed_search_never_replays_the_first_drivers_draws(smoke, killed_after):
    smoke = dataclasses.replace(smoke, num_samples=6)
    first = OptunaAskTellSearcher(smoke, "val_r_mean")
    for i in range(killed_after):                     # asked, then the driver dies with them RUNNING
        first.suggest(f"a{i}")
    again = OptunaAskTellSearcher(smoke, "val_r_mean", resume_unfinished=True)
    while again.suggest(f"b{len(_params(smoke))}") != "FINISHED":
        pass
    params = _params(smoke)
    assert len(params) == 6 and len(set(params)) == 6     # six trials, six distinct configs
    # the same resume from the same state draws the same configs (the reseeding is deterministic)
    fresh = dataclasses.replace(smoke, name="smoke2")
    first2 = OptunaAskTellSearcher(fresh, "val_r_mean")
    for i in range(killed_after):
        first2.suggest(f"a{i}")
    again2 = OptunaAskTellSearcher(fresh, "val_r_mean", resume_unfinished=True)
    while again2.suggest("c") != "FINISHED":
        pass
    other = optuna.load_study(study_name="smoke2", storage=fresh.optuna_storage_url()).get_trials()
    assert [tuple(sorted(t.params.items())) for t in sorted(other, key=lambda t: t.number)] == params


def test_resume_retries_a_failed_trial_under_its_id_with_its_parameters(smoke):
    first = OptunaAskTellSearcher(smoke, "val_r_mean")
    configs = [first.suggest(f"t{i}")[TRIAL_KEY] for i in range(4)]
    for i in (0, 2, 3):
        first.on_trial_complete(f"t{i}", result(4, 20.0 + i))
    first.on_trial_complete("t1", result(2, 5.0), error=True)       # its worker was killed
    again = OptunaAskTellSearcher(smoke, "val_r_mean", resume_unfinished=True, retry={"trial-0001"})
    assert again.total == 1
    retried = again.suggest("r")[TRIAL_KEY]
    assert retried.trial_id == "trial-0001" and retried.overrides == configs[1].overrides
    assert again.suggest("s") == "FINISHED"
    again.on_trial_complete("r", result(4, 30.0))
    study = optuna.load_study(study_name="smoke", storage=smoke.optuna_storage_url())
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert study.get_trials()[4].user_attrs["harma_trial_id"] == "trial-0001"
    # a later resume has nothing left to run: four distinct ids are finished
    assert OptunaAskTellSearcher(smoke, "val_r_mean", resume_unfinished=True).total == 0


def test_a_retry_enqueued_by_a_driver_that_died_is_not_enqueued_twice(smoke):
    first = OptunaAskTellSearcher(smoke, "val_r_mean")
    for i in range(4):
        first.suggest(f"t{i}")
    for i in range(3):
        first.on_trial_complete(f"t{i}", result(4, 20.0 + i))
    first.on_trial_complete("t3", result(1, 1.0), error=True)
    OptunaAskTellSearcher(smoke, "val_r_mean", resume_unfinished=True, retry={"trial-0003"})  # dies at once
    again = OptunaAskTellSearcher(smoke, "val_r_mean", resume_unfinished=True, retry={"trial-0003"})
    assert again.total == 1
    assert again.suggest("r")[TRIAL_KEY].trial_id == "trial-0003"
    assert again.suggest("s") == "FINISHED"
