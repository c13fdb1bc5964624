"""The `search` section of a study file: the Optuna search space (one `ParamSpec` per dotted config key, with
`when` conditions between keys), the sampler, and the load-time check that every value and pair of values
gives a valid run config (`harma.study.space_check`)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from harma import config as hconfig
from harma.config import RunConfig
from harma.errors import StudyError
from harma.schedulers.base import SchedulerSpec, is_early_stopping
from harma.study.checker import Checker
from harma.study.model import (OPS, ORDER_OPS, PARAM_TYPES, Condition, ParamSpec, SamplerSpec, Search,
                               WarmStart, dependency_order)
from harma.study.space_check import check_space
from harma.validate import is_num as _is_num
from harma.validate import is_scalar as _is_scalar

# ----------------------------------------------------------------------------------------- search space

def parse_search(c: Checker, value: Any, build: Callable[[Mapping[str, Any], str], RunConfig],
                  make: Callable[[Mapping[str, Any]], RunConfig], seeds: tuple[int, ...],
                  scheduler: SchedulerSpec) -> Search:
    s = c.mapping("search", value, ("space", "sampler", "warm_start"), required=("space",))
    raw_space = s["space"]
    if not isinstance(raw_space, Mapping) or not raw_space:
        raise c.fail("search.space", "a non-empty mapping of dotted config key -> spec", raw_space)
    valid = hconfig.valid_keys()
    space = {}
    for key, spec in raw_space.items():
        if key not in valid:
            raise StudyError(f"{c.source}: search.space.{key}: unknown config key; valid keys: {', '.join(valid)}")
        if key == "train.epochs" and is_early_stopping(scheduler):
            raise StudyError(f"{c.source}: search.space.train.epochs: cannot be searched with an early-stopping "
                             f"scheduler ({scheduler.type}: scheduler.max_epochs is train.epochs)")
        space[key] = _parse_param(c, key, spec)
    base_values = hconfig.flat_dict(build({}, "base"))
    for key, spec in space.items():
        _check_condition(c, key, spec, space, base_values)
    check_space(c.source, space, make)
    try:
        order = dependency_order(space)
    except StudyError as exc:
        raise StudyError(f"{c.source}: {exc}") from None
    sampler = _parse_sampler(c, s.get("sampler"), seeds)
    warm = None
    if s.get("warm_start") is not None:
        ws = c.mapping("search.warm_start", s["warm_start"], ("study", "top_k"), required=("study",))
        warm = WarmStart(study=c.name("search.warm_start.study", ws["study"]),
                         top_k=c.integer("search.warm_start.top_k", ws.get("top_k", 5), minimum=1))
    return Search(space={k: space[k] for k in order}, sampler=sampler, warm_start=warm)


def _parse_sampler(c: Checker, value: Any, seeds: tuple[int, ...]) -> SamplerSpec:
    if value is None:
        return SamplerSpec(seed=seeds[0])
    sm = c.mapping("search.sampler", value, ("seed", "n_startup_trials"))
    seed = sm.get("seed", seeds[0])
    if seed is not None:
        seed = c.integer("search.sampler.seed", seed)
    return SamplerSpec(seed=seed,
                       n_startup_trials=c.integer("search.sampler.n_startup_trials", sm.get("n_startup_trials", 10),
                                                  minimum=0))


PARAM_KEYS = {"float": ("type", "low", "high", "log", "when"),
              "int": ("type", "low", "high", "step", "log", "when"),
              "categorical": ("type", "choices", "when")}


def _parse_param(c: Checker, key: str, value: Any) -> ParamSpec:
    at = f"search.space.{key}"
    if not isinstance(value, Mapping):
        raise c.fail(at, "a mapping like {type: float, low: 0.1, high: 1.0}", value)
    typ = c.choice(f"{at}.type", value.get("type"), PARAM_TYPES)
    spec = c.mapping(at, value, PARAM_KEYS[typ])
    when = _parse_condition(c, f"{at}.when", spec["when"]) if "when" in spec else None
    if typ == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise c.fail(f"{at}.choices", "a non-empty list", choices)
        for ch in choices:
            if not _is_scalar(ch):
                raise c.fail(f"{at}.choices", "choices that are null, bool, int, float or string", ch)
        if len({repr(ch) for ch in choices}) != len(choices):
            raise c.fail(f"{at}.choices", "distinct choices", choices)
        return ParamSpec(key=key, type=typ, choices=tuple(choices), when=when)
    for k in ("low", "high"):
        if k not in spec:
            raise StudyError(f"{c.source}: {at}.{k}: required for type {typ}")
    log = c.boolean(f"{at}.log", spec.get("log", False))
    if typ == "int":
        low, high = c.integer(f"{at}.low", spec["low"]), c.integer(f"{at}.high", spec["high"])
        step = c.integer(f"{at}.step", spec.get("step", 1), minimum=1)
        if log and step != 1:
            raise c.fail(f"{at}.step", "1 (or no step) when log is true", step)
        if (high - low) % step != 0:
            raise c.fail(f"{at}.high", f"low + a multiple of step ({low} + k*{step})", high)
    else:
        low, high = c.number(f"{at}.low", spec["low"]), c.number(f"{at}.high", spec["high"])
        step = None
    if low >= high:
        raise c.fail(f"{at}.low", f"a value < high ({high})", low)
    if log and low <= 0:
        raise c.fail(f"{at}.low", "a value > 0 when log is true", low)
    return ParamSpec(key=key, type=typ, low=low, high=high, step=step if typ == "int" else None, log=log,
                     when=when)


def _parse_condition(c: Checker, at: str, value: Any) -> Condition:
    cond = c.mapping(at, value, ("key", "op", "value"), required=("key", "op", "value"))
    key = c.string(f"{at}.key", cond["key"], "a dotted config key")
    op = c.choice(f"{at}.op", cond["op"], tuple(OPS))
    val = cond["value"]
    if not _is_scalar(val):
        raise c.fail(f"{at}.value", "a null, bool, number or string", val)
    if op in ORDER_OPS and not _is_num(val):
        raise c.fail(f"{at}.value", f"a number for op {op}", val)
    return Condition(key=key, op=op, value=val)


def _check_condition(c: Checker, key: str, spec: ParamSpec, space: Mapping[str, ParamSpec],
                     base_values: Mapping[str, Any]) -> None:
    cond = spec.when
    if cond is None:
        return
    at = f"search.space.{key}.when.key"
    if cond.key == key:
        raise c.fail(at, "another key than the one it guards", cond.key)
    if cond.key not in space and cond.key not in base_values:
        raise c.fail(at, "a key of the search space or of the base config", cond.key)
    if cond.op in ORDER_OPS:
        values = list(space[cond.key].edge_values()) if cond.key in space else []
        values.append(base_values.get(cond.key))
        bad = [v for v in values if not _is_num(v)]
        if bad:
            raise c.fail(at, f"a numeric key for op {cond.op} (value {bad[0]!r} is not a number)", cond.key)
