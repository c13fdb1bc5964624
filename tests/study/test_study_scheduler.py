"""The scheduler of a study file: a hyperband study loads, and the study's rules for any scheduler that stops
trials early (only a search, max_epochs = train.epochs, train.epochs not searched) hold for hyperband as for
asha; every invalid value is one error naming the file and the key."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harma.schedulers.hyperband import HyperbandSpec
from study_files import load
from study_files import load_error as load_named_error

HYPERBAND = {"type": "hyperband", "max_epochs": 4, "grace_period": 1, "reduction_factor": 2, "brackets": 2}


def search(scheduler: dict | None = None, space: dict | None = None) -> dict:
    return {"name": "t", "kind": "search", "num_samples": 2,
            "base": {"config": "synthetic-tiny", "set": {"train.epochs": 4}},
            "scheduler": copy.deepcopy(HYPERBAND if scheduler is None else scheduler),
            "search": {"space": space or {"optim.lr": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}}}}


def load_error(data: dict, tmp_path: Path) -> str:
    """The one-line message, which starts with the file's path."""
    message = load_named_error(data, tmp_path)
    assert message.startswith(f"{tmp_path / 'study.yaml'}: "), message
    return message


def test_hyperband_loads_with_its_brackets_and_defaults(tmp_path):
    study = load(search(), tmp_path)
    assert study.scheduler == HyperbandSpec(max_epochs=4, grace_period=1, reduction_factor=2.0, brackets=2)
    assert study.scheduler.type == "hyperband" and study.scheduler.bracket_rungs() == [[1, 2], [2]]
    assert load(search({"type": "hyperband"}), tmp_path).scheduler == HyperbandSpec(4, 1, 2.0, 3)


@pytest.mark.parametrize("scheduler, needle", [
    ({**HYPERBAND, "brackets": 0}, "scheduler.brackets: expected an int >= 1, got 0"),
    ({**HYPERBAND, "brackets": 4}, "scheduler.brackets: expected an int from 1 to 3"),
    ({**HYPERBAND, "brackets": "two"}, "scheduler.brackets: expected an int >= 1, got 'two'"),
    ({**HYPERBAND, "grace_period": 0}, "scheduler.grace_period"),
    ({**HYPERBAND, "grace_period": 5}, "scheduler.grace_period: expected an int <= scheduler.max_epochs (4)"),
    ({**HYPERBAND, "reduction_factor": 1}, "scheduler.reduction_factor: expected a number > 1"),
    ({**HYPERBAND, "max_epochs": 9}, "scheduler.max_epochs: expected equal to the base config's train.epochs (4)"),
    ({**HYPERBAND, "brackts": 2}, "unknown key scheduler.brackts; valid keys of scheduler: type, max_epochs"),
    ({"type": "asha", "brackets": 2}, "unknown key scheduler.brackets"),
    ({"brackets": 2}, "scheduler.type: required but missing"),
    ({"type": "pbt"}, "scheduler.type: expected one of none, asha, hyperband, got 'pbt'"),
    ({"type": "none", "brackets": 2}, "scheduler.brackets: only allowed with an early-stopping scheduler.type"),
])
def test_invalid_schedulers_are_one_error_naming_the_key(scheduler, needle, tmp_path):
    message = load_error(search(scheduler), tmp_path)
    assert needle in message, message


def test_an_ablation_may_not_stop_trials_early(tmp_path):
    data = {"name": "a", "kind": "ablation", "base": {"config": "synthetic-tiny"}, "arms": {"harma": {}},
            "scheduler": {"type": "hyperband"}}
    assert "scheduler.type: expected none for kind ablation" in load_error(data, tmp_path)


def test_train_epochs_is_not_searched_with_an_early_stopping_scheduler(tmp_path):
    epochs = {"train.epochs": {"type": "int", "low": 2, "high": 4}}
    message = load_error(search(space=epochs), tmp_path)
    assert "search.space.train.epochs: cannot be searched with an early-stopping scheduler (hyperband" in message
    assert load(search({"type": "none"}, space=epochs), tmp_path).search.space["train.epochs"].high == 4
