"""The schedulers a study file may name, by `scheduler.type`, and the three things asked of any of them:
read a study file's `scheduler:` mapping into its spec (`parse_scheduler`), write a spec back as that mapping
(`scheduler_data`, for snapshots) and build its `Policy` (`build_policy`).  Adding a scheduler is its own
module (a spec with a `deterministic` field, `parse`, `to_data`, `policy` with `shared_epochs`) and one line in
SCHEDULERS.  `deterministic` (any type; default DETERMINISTIC) is read here, once for every scheduler: true
takes decisions in trial order (`harma.schedulers.ordered`) and asks and tells Optuna in trial order."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Iterable

from harma.errors import StudyError
from harma.schedulers import asha, hyperband, none
from harma.schedulers.base import KeyChecker, Observation, Policy, SchedulerModule, SchedulerSpec

SCHEDULERS: dict[str, SchedulerModule] = {"none": none, "asha": asha, "hyperband": hyperband}
DEFAULT = "none"
DETERMINISTIC = False    # asynchronous by default: a held trial keeps its slot (and GPU) idle; see README
DETERMINISTIC_KEY = "deterministic"


def parse_scheduler(c: KeyChecker, key: str, value: Any, base_epochs: int) -> SchedulerSpec:
    """The spec of a study file's scheduler mapping at `key` (None: the default, no early stopping)."""
    if value is None:
        value = {"type": DEFAULT}
    types = tuple(SCHEDULERS)
    if not isinstance(value, Mapping):
        raise c.fail(key, f"a mapping with a type ({', '.join(types)}) and its settings", value)
    if "type" not in value:
        raise StudyError(f"{c.source}: {key}.type: required but missing")
    module = SCHEDULERS[c.choice(f"{key}.type", value["type"], types)]
    deterministic = c.boolean(f"{key}.{DETERMINISTIC_KEY}", value.get(DETERMINISTIC_KEY, DETERMINISTIC))
    rest = {k: v for k, v in value.items() if k != DETERMINISTIC_KEY}
    return dataclasses.replace(module.parse(c, key, rest, base_epochs), deterministic=deterministic)


def scheduler_data(spec: SchedulerSpec) -> dict[str, Any]:
    """The study-file mapping of a spec (parse_scheduler reads it back to an equal spec)."""
    return {**SCHEDULERS[spec.type].to_data(spec), DETERMINISTIC_KEY: spec.deterministic}


def build_policy(spec: SchedulerSpec, mode: str, recorded: Iterable[Observation] = ()) -> Policy:
    """The spec's policy for an objective of `mode` (max | min), its state rebuilt from `recorded`."""
    return SCHEDULERS[spec.type].policy(spec, mode, recorded)
