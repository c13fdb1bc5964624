"""The scheduler registry: every registered scheduler reads back what it writes, builds a policy, and the package
sits below harma.study and harma.tune (it imports neither, nor Ray or Optuna)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from harma.errors import StudyError
from harma.schedulers.asha import AshaPolicy, AshaSpec
from harma.schedulers.base import CONTINUE, is_early_stopping
from harma.schedulers.hyperband import HyperbandPolicy, HyperbandSpec
from harma.schedulers.none import NoneSpec, RunToEnd
from harma.schedulers.registry import SCHEDULERS, build_policy, parse_scheduler, scheduler_data
from harma.study.checker import Checker

SPECS = [NoneSpec(), AshaSpec(8, 2, 2.0), HyperbandSpec(8, 1, 2.0, 3)]


def test_every_scheduler_is_registered_under_its_type():
    assert list(SCHEDULERS) == ["none", "asha", "hyperband"]
    assert sorted(spec.type for spec in SPECS) == sorted(SCHEDULERS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_data_reads_back_the_same_spec(spec):
    data = scheduler_data(spec)
    assert data["type"] == spec.type
    assert parse_scheduler(Checker("s.yaml"), "scheduler", data, base_epochs=8) == spec


@pytest.mark.parametrize("spec, kind", [(SPECS[0], RunToEnd), (SPECS[1], AshaPolicy), (SPECS[2], HyperbandPolicy)])
def test_policies(spec, kind):
    policy = build_policy(spec, "max")
    assert isinstance(policy, kind) and policy.decide("t", 1, 1.0) == CONTINUE and policy.describe()


def test_defaults_and_early_stopping():
    c = Checker("s.yaml")
    assert parse_scheduler(c, "scheduler", None, 5) == NoneSpec() and not is_early_stopping(NoneSpec())
    assert parse_scheduler(c, "scheduler", {"type": "asha"}, 5) == AshaSpec(5, 1, 2.0)
    assert parse_scheduler(c, "scheduler", {"type": "hyperband"}, 4) == HyperbandSpec(4, 1, 2.0, 3)
    assert is_early_stopping(AshaSpec(5)) and is_early_stopping(HyperbandSpec(5))


@pytest.mark.parametrize("value, needle", [
    (3, "scheduler: expected a mapping with a type (none, asha, hyperband)"),
    ({"grace_period": 1}, "scheduler.type: required but missing"),
    ({"type": "pbt"}, "scheduler.type: expected one of none, asha, hyperband, got 'pbt'"),
    ({"type": "none", "max_epochs": 3}, "scheduler.max_epochs: only allowed with an early-stopping"),
    ({"type": "asha", "brackets": 2}, "unknown key scheduler.brackets; valid keys of scheduler: type, max_epochs"),
    ({"type": "hyperband", "brackets": 0}, "scheduler.brackets: expected an int >= 1, got 0"),
    ({"type": "hyperband", "brackets": 4}, "scheduler.brackets: expected an int from 1 to 3"),
    ({"type": "hyperband", "brackets": 1.5}, "scheduler.brackets: expected an int >= 1, got 1.5"),
    ({"type": "hyperband", "reduction_factor": 1}, "scheduler.reduction_factor: expected a number > 1"),
    ({"type": "hyperband", "grace_period": 5}, "scheduler.grace_period: expected an int <= scheduler.max_epochs"),
])
def test_invalid_values_are_one_error_naming_the_key(value, needle):
    with pytest.raises(StudyError) as err:
        parse_scheduler(Checker("s.yaml"), "scheduler", value, base_epochs=4)
    message = str(err.value)
    assert message.startswith("s.yaml: ") and needle in message and "\n" not in message, message


def test_the_package_imports_neither_ray_optuna_nor_the_layers_above():
    code = ("import sys, harma.schedulers.registry; "
            "print(*[m in sys.modules for m in ('ray', 'optuna', 'harma.study', 'harma.tune', 'torch')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"] * 5
