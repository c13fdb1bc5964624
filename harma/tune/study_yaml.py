"""Study files: read a YAML study definition and validate it into a `harma.tune.study.Study` before Ray starts.

`load_study(path)` reads a study file (or `studies/<name>.yaml`); every error is a `StudyError` naming the file,
the key path (`scheduler.grace_period`, `search.space.optim.lr.low`) and what was expected.  Every run config a
study can produce is checked by building it with `harma.config` (the base, each ablation arm, each value of each
searched key and each pair of searched keys: see `harma.tune.space_check`), together with the train batch
against the train split's size, so a typo fails in a second rather than an hour into a Ray job.  Names are at
most NAME_MAX characters.  The YAML loader reads `1e-5` as a float and refuses duplicate keys.  No Ray, no
Optuna here.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from harma import config as hconfig
from harma.config import ConfigError, RunConfig
from harma.metrics import METRIC_KEYS
from harma.tune.study import (
    KIND_ONLY_KEYS,
    KINDS,
    MODES,
    NAME_MAX,
    NAME_RE,
    NAME_RULE,
    OPS,
    OPTUNA_URL_SCHEMES,
    ORDER_OPS,
    PARAM_TYPES,
    SCHEDULERS,
    SPLITS,
    STORAGE_SCHEMES,
    TOP_KEYS,
    Condition,
    Objective,
    ParamSpec,
    Replicate,
    Resources,
    SamplerSpec,
    Scheduler,
    Search,
    Study,
    StudyError,
    WarmStart,
    _scheme,
    dependency_order,
)
from harma.validate import is_int as _is_int
from harma.validate import is_num as _is_num
from harma.validate import is_scalar as _is_scalar

# ------------------------------------------------------------------------------------------- YAML loading

class _StudyLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-5` as a float (YAML 1.1 wants `1.0e-5`) and rejects duplicate keys."""


_StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StudyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise StudyError(f"study file {path}: not found")
    try:
        return yaml.load(path.read_text(), Loader=_StudyLoader)
    except yaml.YAMLError as exc:
        raise StudyError(f"study file {path}: not valid YAML ({exc})") from None


def resolve_study_path(name_or_path: str | os.PathLike) -> Path:
    """A study file path, or a bare name looked up as `studies/<name>.yaml` in the working directory."""
    p = Path(name_or_path)
    if p.is_file() or p.suffix in (".yaml", ".yml"):
        return p
    return Path("studies") / f"{p}.yaml"


def load_study(path: str | os.PathLike) -> Study:
    """Read and validate a study file (or `studies/<name>.yaml` for a bare name)."""
    p = resolve_study_path(path)
    return parse_study(_read_yaml(p), source=str(p), folder=p.parent)


# ----------------------------------------------------------------------------------------------- checking

_MISSING = object()


class _Checker:
    """Small typed readers that raise StudyError naming the file and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: Any = _MISSING) -> StudyError:
        tail = "" if got is _MISSING else f", got {got!r}"
        return StudyError(f"{self.source}: {key}: expected {expected}{tail}")

    def mapping(self, key: str, value: Any, allowed: Sequence[str], required: Sequence[str] = ()) -> dict:
        label = key or "study"
        if not isinstance(value, Mapping):
            raise self.fail(label, f"a mapping with keys {', '.join(allowed)}", value)
        prefix = f"{key}." if key else ""
        for k in value:
            if k not in allowed:
                raise StudyError(f"{self.source}: unknown key {prefix}{k}; valid keys"
                                 f"{' of ' + key if key else ''}: {', '.join(allowed)}")
        for k in required:
            if k not in value:
                raise StudyError(f"{self.source}: {prefix}{k}: required but missing")
        return dict(value)

    def string(self, key: str, value: Any, what: str = "a non-empty string") -> str:
        if not isinstance(value, str) or value == "":
            raise self.fail(key, what, value)
        return value

    def name(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not NAME_RE.fullmatch(value):
            raise self.fail(key, NAME_RULE, value)
        if len(value) > NAME_MAX:
            raise StudyError(f"{self.source}: {key}: expected a name of at most {NAME_MAX} characters (it becomes "
                             f"part of file names), got {len(value)} characters: {value[:40]!r}...")
        return value

    def choice(self, key: str, value: Any, options: Sequence[str]) -> str:
        if value not in options:
            raise self.fail(key, f"one of {', '.join(options)}", value)
        return value

    def integer(self, key: str, value: Any, minimum: int | None = None) -> int:
        if not _is_int(value) or (minimum is not None and value < minimum):
            raise self.fail(key, "an int" + (f" >= {minimum}" if minimum is not None else ""), value)
        return value

    def number(self, key: str, value: Any, minimum: float | None = None, strict: bool = False) -> float:
        ok = _is_num(value) and math.isfinite(value)
        if ok and minimum is not None:
            ok = value > minimum if strict else value >= minimum
        if not ok:
            bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
            raise self.fail(key, f"a number{bound}", value)
        return float(value)

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def seeds(self, key: str, value: Any) -> tuple[int, ...]:
        if not isinstance(value, list) or not value or not all(_is_int(s) for s in value):
            raise self.fail(key, "a non-empty list of ints", value)
        if len(set(value)) != len(value):
            raise self.fail(key, "distinct seeds", value)
        return tuple(value)

    def overrides(self, key: str, value: Any) -> dict[str, Any]:
        """A mapping of dotted config keys; `null` is an empty mapping."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key, "a mapping of dotted config keys (e.g. adapter.bottleneck: 64)", value)
        valid = hconfig.valid_keys()
        for k in value:
            if k not in valid:
                raise StudyError(f"{self.source}: {key}.{k}: unknown config key; valid keys: {', '.join(valid)}")
        return dict(value)


# ------------------------------------------------------------------------------------------------ parsing

def parse_study(data: Any, source: str = "<study>", folder: str | os.PathLike = ".") -> Study:
    """Validate a study mapping (as read from YAML) and build the `Study`."""
    c = _Checker(source)
    data = c.mapping("", data, TOP_KEYS, required=("name", "kind", "base"))
    name = c.name("name", data["name"])
    kind = c.choice("kind", data["kind"], KINDS)
    for key, only in KIND_ONLY_KEYS.items():
        if key in data and kind != only:
            raise StudyError(f"{source}: {key}: only allowed for kind {only} (this study is kind {kind})")
    base_config, base_set, base_cfg = _parse_base(c, data["base"], Path(folder))

    seeds = _parse_seeds(c, data, base_set, base_cfg)
    replicate = _parse_replicate(c, data, seeds, base_set) if kind == "replicate" else None
    if replicate is not None:
        seeds = replicate.seeds
    resources = _parse_resources(c, data.get("resources"))
    make = _run_config_maker(base_config, {**base_set, "train.seed": seeds[0]}, resources.workers_per_trial)

    def build(overrides: Mapping[str, Any], key: str) -> RunConfig:
        try:
            return make(overrides)
        except ConfigError as exc:
            raise StudyError(f"{source}: {key}: gives an invalid run config: {exc}") from None

    scheduler = _parse_scheduler(c, data.get("scheduler"), kind, build({}, "base"))
    search = None
    num_samples = None
    if kind == "search":
        for key in ("search", "num_samples"):
            if key not in data:
                raise StudyError(f"{source}: {key}: required for kind search")
        num_samples = c.integer("num_samples", data["num_samples"], minimum=1)
        search = _parse_search(c, data["search"], build, make, seeds, scheduler)
        warm = search.warm_start
        if warm is not None and (warm.study == name or warm.top_k > num_samples):
            raise c.fail("search.warm_start", f"another study than this one, and top_k <= num_samples "
                                              f"({num_samples})", {"study": warm.study, "top_k": warm.top_k})
    arms = _parse_arms(c, data, build) if kind == "ablation" else {}
    _refuse_objective_overrides(source, base_set, arms, search)

    storage = c.string("storage", data.get("storage", "results"), "a local path or an s3:// gs:// file:// URI")
    if "://" in storage and _scheme(storage) not in STORAGE_SCHEMES:
        raise c.fail("storage", "a local path or an s3:// gs:// file:// URI", storage)
    optuna_storage = _parse_optuna_storage(c, data.get("optuna_storage"))
    if kind == "search" and optuna_storage is None and _scheme(storage) in ("s3", "gs"):
        raise c.fail("optuna_storage", f"a sqlite:///, postgresql://, mysql:// URL or journal:<path> "
                                       f"when storage is remote ({storage})", None)
    max_concurrent = data.get("max_concurrent")
    if max_concurrent is not None:
        max_concurrent = c.integer("max_concurrent", max_concurrent, minimum=1)

    return Study(
        name=name, kind=kind, base_config=base_config, base_set=base_set,
        objective=_parse_objective(c, data.get("objective")),
        resources=resources,
        seeds=seeds, scheduler=scheduler, storage=storage, optuna_storage=optuna_storage,
        num_samples=num_samples, max_concurrent=max_concurrent, search=search, arms=arms,
        replicate=replicate, source=source,
    )


OBJECTIVE_KEYS = ("train.objective", "train.objective_mode")   # set from the study's `objective`


def _run_config_maker(base_config: str, base_overrides: Mapping[str, Any], world: int
                      ) -> Callable[[Mapping[str, Any]], RunConfig]:
    """overrides -> the run config of a trial (ConfigError if invalid, or if its batch exceeds what each of the
    trial's `world` DDP workers gets of the train split).  The base is loaded once; each config then costs an
    `apply_overrides` (about 15 microseconds), so a search space can be checked value by value."""
    from harma.data.split_size import check_batch_fits

    cache: list[RunConfig] = []

    def make(overrides: Mapping[str, Any]) -> RunConfig:
        if not cache:
            cache.append(hconfig.load_config(base_config, base_overrides))
        cfg = hconfig.apply_overrides(cache[0], overrides) if overrides else cache[0]
        check_batch_fits(cfg, world)
        return cfg

    return make


def _refuse_objective_overrides(source: str, base_set: Mapping[str, Any], arms: Mapping[str, Mapping[str, Any]],
                                search: Search | None) -> None:
    places = [("base.set", base_set), *((f"arms.{arm}", ov) for arm, ov in arms.items()),
              ("search.space", search.space if search else {})]
    for where, keys in places:
        for key in OBJECTIVE_KEYS:
            if key in keys:
                raise StudyError(f"{source}: {where}.{key}: remove it; the trainer's objective comes from the "
                                 f"study's `objective:`")


def _parse_base(c: _Checker, value: Any, folder: Path) -> tuple[str, dict[str, Any], RunConfig]:
    base = c.mapping("base", value, ("config", "set"), required=("config",))
    config = c.string("base.config", base["config"], "a shipped config name or a YAML path")
    if config not in hconfig.builtin_names() and not Path(config).is_absolute() and (folder / config).is_file():
        config = str(folder / config)
    base_set = c.overrides("base.set", base.get("set"))
    try:
        cfg = hconfig.load_config(config, base_set)
    except ConfigError as exc:
        raise StudyError(f"{c.source}: base: {exc}") from None
    return config, base_set, cfg


def _parse_seeds(c: _Checker, data: dict, base_set: dict, base_cfg: RunConfig) -> tuple[int, ...]:
    if "seeds" not in data:
        return (base_cfg.train.seed,)
    if "train.seed" in base_set:
        raise StudyError(f"{c.source}: base.set.train.seed: remove it; the seed comes from `seeds`")
    return c.seeds("seeds", data["seeds"])


def _parse_objective(c: _Checker, value: Any) -> Objective:
    if value is None:
        return Objective()
    obj = c.mapping("objective", value, ("metric", "split", "mode"))
    return Objective(
        metric=c.choice("objective.metric", obj.get("metric", "r_mean"), METRIC_KEYS),
        split=c.choice("objective.split", obj.get("split", "val"), SPLITS),
        mode=c.choice("objective.mode", obj.get("mode", "max"), MODES),
    )


def _parse_resources(c: _Checker, value: Any) -> Resources:
    if value is None:
        return Resources()
    res = c.mapping("resources", value, ("gpus_per_trial", "cpus_per_worker", "workers_per_trial", "custom"))
    custom = res.get("custom") or {}
    if not isinstance(custom, Mapping):
        raise c.fail("resources.custom", "a mapping of custom Ray resource name -> amount per trial", custom)
    for k, v in custom.items():
        if not isinstance(k, str) or not k or k in ("CPU", "GPU", "memory"):
            raise c.fail("resources.custom", "custom resource names (strings other than CPU, GPU, memory)", k)
        c.number(f"resources.custom.{k}", v, minimum=0)
    resources = Resources(
        gpus_per_trial=c.number("resources.gpus_per_trial", res.get("gpus_per_trial", 0), minimum=0),
        cpus_per_worker=c.number("resources.cpus_per_worker", res.get("cpus_per_worker", 1), minimum=0,
                                 strict=True),
        workers_per_trial=c.integer("resources.workers_per_trial", res.get("workers_per_trial", 1), minimum=1),
        custom={k: float(v) for k, v in custom.items()},
    )
    _check_gpu_split(c, resources)
    return resources


def _check_gpu_split(c: _Checker, res: Resources) -> None:
    """One process trains on one GPU: a single-worker trial holds at most 1 GPU (a fraction packs several
    trials on one GPU); a DDP trial holds exactly one GPU per worker (NCCL cannot run two ranks on one GPU)."""
    if res.gpus_per_trial == 0:
        return
    if res.workers_per_trial == 1 and res.gpus_per_trial > 1:
        raise c.fail("resources.gpus_per_trial", "at most 1 for a single-worker trial (one process uses one GPU; "
                     "a fraction such as 0.25 packs trials on a GPU; set workers_per_trial for DDP)",
                     res.gpus_per_trial)
    if res.workers_per_trial > 1 and res.gpus_per_worker != 1:
        raise c.fail("resources.gpus_per_trial", f"{res.workers_per_trial} (one whole GPU per DDP worker: "
                     f"{res.workers_per_trial} workers would get {res.gpus_per_worker:g} GPU each, and NCCL cannot "
                     f"run two ranks on one GPU)", res.gpus_per_trial)


def _parse_scheduler(c: _Checker, value: Any, kind: str, base_cfg: RunConfig) -> Scheduler:
    if value is None:
        return Scheduler()
    sch = c.mapping("scheduler", value, ("type", "max_epochs", "grace_period", "reduction_factor"),
                    required=("type",))
    typ = c.choice("scheduler.type", sch["type"], SCHEDULERS)
    if typ == "none":
        extra = [k for k in sch if k != "type"]
        if extra:
            raise StudyError(f"{c.source}: scheduler.{extra[0]}: only allowed with scheduler.type asha")
        return Scheduler()
    if kind != "search":
        raise c.fail("scheduler.type", f"none for kind {kind} (every arm runs to the end)", typ)
    epochs = base_cfg.train.epochs
    max_epochs = c.integer("scheduler.max_epochs", sch.get("max_epochs", epochs), minimum=1)
    if max_epochs != epochs:
        raise c.fail("scheduler.max_epochs", f"equal to the base config's train.epochs ({epochs}); set "
                                             f"train.epochs under base.set", max_epochs)
    grace = c.integer("scheduler.grace_period", sch.get("grace_period", 1), minimum=1)
    if grace > max_epochs:
        raise c.fail("scheduler.grace_period", f"an int <= scheduler.max_epochs ({max_epochs})", grace)
    rf = c.number("scheduler.reduction_factor", sch.get("reduction_factor", 2), minimum=1, strict=True)
    return Scheduler(type="asha", max_epochs=max_epochs, grace_period=grace, reduction_factor=rf)


def _parse_optuna_storage(c: _Checker, value: Any) -> str | None:
    if value is None:
        return None
    expected = "null, a sqlite:///, postgresql://, mysql:// URL or journal:<path>"
    if not isinstance(value, str):
        raise c.fail("optuna_storage", expected, value)
    if value.startswith("journal:"):
        if value[len("journal:"):].strip() == "":
            raise c.fail("optuna_storage", "a file path after journal:", value)
        return value
    scheme = _scheme(value).split("+", 1)[0]
    if scheme not in OPTUNA_URL_SCHEMES or (scheme == "sqlite" and not value.startswith("sqlite:///")):
        raise c.fail("optuna_storage", expected, value)
    return value


def _parse_arms(c: _Checker, data: dict, build: Callable[[Mapping[str, Any], str], RunConfig]
                ) -> dict[str, dict[str, Any]]:
    if "arms" not in data:
        raise StudyError(f"{c.source}: arms: required for kind ablation")
    value = data["arms"]
    if not isinstance(value, Mapping) or not value:
        raise c.fail("arms", "a non-empty mapping of arm name -> dotted overrides", value)
    arms = {}
    for arm, overrides in value.items():
        c.name(f"arms.{arm}", arm)
        ov = c.overrides(f"arms.{arm}", overrides)
        if "train.seed" in ov:
            raise StudyError(f"{c.source}: arms.{arm}.train.seed: remove it; the seed comes from `seeds`")
        build(ov, f"arms.{arm}")
        arms[arm] = ov
    return arms


def _parse_replicate(c: _Checker, data: dict, top_seeds: tuple[int, ...], base_set: dict) -> Replicate:
    if "replicate" not in data:
        raise StudyError(f"{c.source}: replicate: required for kind replicate")
    rep = c.mapping("replicate", data["replicate"], ("from", "top_k", "seeds"), required=("from",))
    seeds = top_seeds
    if "seeds" in rep:
        if "seeds" in data:
            raise StudyError(f"{c.source}: replicate.seeds: give the seeds once, here or as top-level seeds")
        if "train.seed" in base_set:
            raise StudyError(f"{c.source}: base.set.train.seed: remove it; the seed comes from replicate.seeds")
        seeds = c.seeds("replicate.seeds", rep["seeds"])
    return Replicate(
        source=c.name("replicate.from", rep["from"]),
        top_k=c.integer("replicate.top_k", rep.get("top_k", 1), minimum=1),
        seeds=seeds,
    )


# ----------------------------------------------------------------------------------------- search space

def _parse_search(c: _Checker, value: Any, build: Callable[[Mapping[str, Any], str], RunConfig],
                  make: Callable[[Mapping[str, Any]], RunConfig], seeds: tuple[int, ...],
                  scheduler: Scheduler) -> Search:
    s = c.mapping("search", value, ("space", "sampler", "warm_start"), required=("space",))
    raw_space = s["space"]
    if not isinstance(raw_space, Mapping) or not raw_space:
        raise c.fail("search.space", "a non-empty mapping of dotted config key -> spec", raw_space)
    valid = hconfig.valid_keys()
    space = {}
    for key, spec in raw_space.items():
        if key not in valid:
            raise StudyError(f"{c.source}: search.space.{key}: unknown config key; valid keys: {', '.join(valid)}")
        if key == "train.epochs" and scheduler.type == "asha":
            raise StudyError(f"{c.source}: search.space.train.epochs: cannot be searched with an asha "
                             f"scheduler (scheduler.max_epochs is train.epochs)")
        space[key] = _parse_param(c, key, spec)
    base_values = hconfig.flat_dict(build({}, "base"))
    for key, spec in space.items():
        _check_condition(c, key, spec, space, base_values)
    from harma.tune.space_check import check_space   # here: space_check imports harma.tune.study

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


def _parse_sampler(c: _Checker, value: Any, seeds: tuple[int, ...]) -> SamplerSpec:
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


def _parse_param(c: _Checker, key: str, value: Any) -> ParamSpec:
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


def _parse_condition(c: _Checker, at: str, value: Any) -> Condition:
    cond = c.mapping(at, value, ("key", "op", "value"), required=("key", "op", "value"))
    key = c.string(f"{at}.key", cond["key"], "a dotted config key")
    op = c.choice(f"{at}.op", cond["op"], tuple(OPS))
    val = cond["value"]
    if not _is_scalar(val):
        raise c.fail(f"{at}.value", "a null, bool, number or string", val)
    if op in ORDER_OPS and not _is_num(val):
        raise c.fail(f"{at}.value", f"a number for op {op}", val)
    return Condition(key=key, op=op, value=val)


def _check_condition(c: _Checker, key: str, spec: ParamSpec, space: Mapping[str, ParamSpec],
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
