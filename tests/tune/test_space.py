"""Search spaces driven by FixedTrial and by a short real Optuna study; sampler and storage construction."""
from __future__ import annotations

import math
import warnings

import optuna
import pytest
import yaml

from harma.config import RunConfig
from harma.tune.space import make_optuna_storage, make_sampler, study_storage, suggest_overrides
from harma.study.model import Condition, ParamSpec
from harma.study.parse import load_study
from harma.errors import StudyError



def _load_study_helpers():
    """The study-file helpers of test_study.py, loaded by path (works with any pytest import mode)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_tune_study_helpers", Path(__file__).parents[1] / "study" / "test_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_h = _load_study_helpers()
ablation_study, base_ref, shipped_study_path, write_and_load = (
    _h.ablation_study, _h.base_ref, _h.shipped_study_path, _h.write_and_load)

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def smoke(tmp_path):
    return load_study(shipped_study_path("smoke", tmp_path))


def fixed_params(study, **changes):
    """A full set of in-range values for the study's space (low ends, first choices), with changes."""
    params = {}
    for key, spec in study.search.space.items():
        params[key] = spec.choices[0] if spec.type == "categorical" else spec.low
    params.update(changes)
    return params


@pytest.mark.parametrize("name", ["smoke", "search-rsitmd"])
@pytest.mark.parametrize("w_triplet", [0.0, 0.5, 1.0])
def test_fixed_trial_gives_a_valid_config(name, w_triplet, tmp_path):
    study = load_study(shipped_study_path(name, tmp_path))
    space = study.search.space
    params = fixed_params(study, **{"loss.w_triplet": w_triplet, "loss.gamma": 3.0, "optim.lr": 2e-5})
    if w_triplet == 0:
        del params["loss.gamma"]          # FixedTrial raises if asked for a key it does not have
    overrides = suggest_overrides(optuna.trial.FixedTrial(params), space, study.base_values())
    assert ("loss.gamma" in overrides) == (w_triplet > 0)
    assert set(overrides) == set(params)
    cfg = study.run_config(overrides)
    assert isinstance(cfg, RunConfig)
    assert cfg.loss.w_triplet == w_triplet and cfg.optim.lr == 2e-5
    assert cfg.loss.gamma == (3.0 if w_triplet > 0 else study.run_config({}).loss.gamma)


def test_every_choice_of_the_smoke_space_validates(smoke):
    space = smoke.search.space
    for bottleneck in space["adapter.bottleneck"].choices:
        for w_affil in space["loss.w_affil"].choices:
            params = fixed_params(smoke, **{"adapter.bottleneck": bottleneck, "loss.w_affil": w_affil})
            params["optim.lr"] = space["optim.lr"].high
            ov = suggest_overrides(optuna.trial.FixedTrial(params), space, smoke.base_values())
            cfg = smoke.run_config(ov)
            assert cfg.adapter.bottleneck == bottleneck and cfg.optim.lr == space["optim.lr"].high


def test_condition_uses_the_base_value_when_its_key_is_not_searched():
    space = {"loss.gamma": ParamSpec("loss.gamma", "float", 0.0, 4.0, when=Condition("loss.w_triplet", "gt", 0))}
    trial = optuna.trial.FixedTrial({"loss.gamma": 1.5})
    assert suggest_overrides(trial, space, {"loss.w_triplet": 1.0}) == {"loss.gamma": 1.5}
    assert suggest_overrides(trial, space, {"loss.w_triplet": 0.0}) == {}
    with pytest.raises(KeyError, match="loss.w_triplet"):
        suggest_overrides(trial, space, {})


def test_conditions_are_evaluated_in_dependency_order():
    # the guard key comes after the guarded one in the mapping: still suggested first
    space = {
        "loss.gamma": ParamSpec("loss.gamma", "float", 0.0, 4.0, when=Condition("loss.w_triplet", "ne", 0.0)),
        "loss.w_triplet": ParamSpec("loss.w_triplet", "categorical", choices=(0.0, 1.0)),
    }
    assert suggest_overrides(optuna.trial.FixedTrial({"loss.w_triplet": 0.0}), space, {"loss.w_triplet": 1.0}) \
        == {"loss.w_triplet": 0.0}


@pytest.mark.parametrize("op,value,expected", [("gt", 1, False), ("ge", 1, True), ("lt", 2, True), ("le", 0, False),
                                               ("eq", 1, True), ("ne", 1, False)])
def test_condition_ops(op, value, expected):
    assert Condition("k", op, value).holds(1) is expected
    assert Condition("k", "gt", 0).holds(None) is False


def test_int_specs_with_step_and_log():
    space = {
        "adapter.bottleneck": ParamSpec("adapter.bottleneck", "int", 8, 64, step=8),
        "adapter.heads": ParamSpec("adapter.heads", "int", 1, 8, log=True),
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        ov = suggest_overrides(trial, space, {})
        assert ov["adapter.bottleneck"] % 8 == 0 and 8 <= ov["adapter.bottleneck"] <= 64
        assert 1 <= ov["adapter.heads"] <= 8
        study.tell(trial, 0.0)
    dists = study.trials[0].distributions
    assert dists["adapter.bottleneck"].step == 8 and dists["adapter.heads"].log


def toy_objective(ov: dict) -> float:
    """Best near lr = 1e-3, small weight decay and no triplet loss; smooth enough for TPE to find."""
    return (-(math.log10(ov["optim.lr"]) + 3.0) ** 2 - 5 * ov["optim.weight_decay"] + 0.1 * ov["loss.w_contr"]
            - 0.5 * ov["loss.w_triplet"])


def test_short_real_study_with_the_sampler(smoke):
    sampler = make_sampler(smoke)
    study = optuna.create_study(direction=smoke.objective.direction, sampler=sampler)
    base = smoke.base_values()
    seen_gamma = []

    def objective(trial):
        ov = suggest_overrides(trial, smoke.search.space, base)
        cfg = smoke.run_config(ov)               # every suggested config validates
        assert isinstance(cfg, RunConfig)
        seen_gamma.append(("loss.gamma" in ov, ov["loss.w_triplet"] > 0))
        return toy_objective(ov)

    study.enqueue_trial({"loss.w_triplet": 0.0})    # make sure the false branch of the condition runs
    study.enqueue_trial({"loss.w_triplet": 1.0, "loss.gamma": 2.0, "adapter.bottleneck": 32})
    study.optimize(objective, n_trials=20)
    assert len(study.trials) == 20
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert all(has == cond for has, cond in seen_gamma)
    assert {cond for _, cond in seen_gamma} == {True, False}    # both branches were explored
    # sanity only: the model-based trials are not far worse than the random start-up ones
    n0 = smoke.search.sampler.n_startup_trials
    values = [t.value for t in study.trials]
    assert max(values[n0:]) >= max(values[:n0]) - 1.0


def test_sampler_is_seeded_and_reproducible(smoke):
    def run():
        study = optuna.create_study(direction="maximize", sampler=make_sampler(smoke))
        study.optimize(lambda t: toy_objective(suggest_overrides(t, smoke.search.space, smoke.base_values())),
                       n_trials=8)
        return [t.params for t in study.trials]

    assert run() == run()


def test_sampler_settings(smoke, tiny_study, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no experimental warnings leak out
        sampler = make_sampler(smoke)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._multivariate is True and sampler._constant_liar is True
    assert sampler._group is True                 # the smoke space has a conditional key
    assert sampler._n_startup_trials == smoke.search.sampler.n_startup_trials
    assert make_sampler(tiny_study)._group is False
    with pytest.raises(StudyError, match="kind"):
        make_sampler(write_and_load(ablation_study(base_ref("synthetic-tiny", tmp_path)), tmp_path))


@pytest.fixture
def tiny_study(tmp_path):
    data = {"name": "plain", "kind": "search", "base": {"config": base_ref("synthetic-tiny", tmp_path)},
            "num_samples": 2, "search": {"space": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}}}
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_study(path)


def test_concurrent_asks_with_constant_liar(smoke):
    study = optuna.create_study(direction="maximize", sampler=make_sampler(smoke))
    base = smoke.base_values()
    for _ in range(3):
        trials = [study.ask() for _ in range(4)]  # 4 running trials at once, as under Ray
        for trial in trials:
            ov = suggest_overrides(trial, smoke.search.space, base)
            smoke.run_config(ov)
            study.tell(trial, toy_objective(ov))
    assert len(study.trials) == 12


def _use(storage) -> list:
    study = optuna.create_study(storage=storage, study_name="s", load_if_exists=True, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    return study.trials


def test_sqlite_storage_creates_folders(tmp_path):
    path = tmp_path / "deep" / "er" / "o.db"
    url = f"sqlite:///{path}"
    _use(make_optuna_storage(url))
    assert path.is_file()
    assert len(_use(make_optuna_storage(url))) == 4             # reopened: trials persisted
    assert isinstance(make_optuna_storage(url), optuna.storages.RDBStorage)


def test_journal_storage(tmp_path):
    path = tmp_path / "j" / "o.log"
    storage = make_optuna_storage(f"journal:{path}")
    assert isinstance(storage, optuna.storages.JournalStorage)
    _use(storage)
    assert path.is_file() and path.stat().st_size > 0
    assert len(_use(make_optuna_storage(f"journal:{path}"))) == 4


def test_optuna_files_are_0600_in_0700_folders(tmp_path, umask):
    import stat

    umask(0o022)
    db, journal = tmp_path / "deep" / "er" / "o.db", tmp_path / "j" / "o.log"
    _use(make_optuna_storage(f"sqlite:///{db}"))
    _use(make_optuna_storage(f"journal:{journal}"))
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in (db, db.parent, db.parent.parent, journal, journal.parent)}
    assert modes == {"deep/er/o.db": 0o600, "deep/er": 0o700, "deep": 0o700, "j/o.log": 0o600, "j": 0o700}


def test_default_study_storage_is_sqlite_under_storage(tiny_study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = study_storage(tiny_study)
    assert isinstance(storage, optuna.storages.RDBStorage)
    _use(storage)
    assert (tmp_path / "results" / "optuna" / "plain.db").is_file()
