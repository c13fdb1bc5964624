"""Study files: read a YAML study definition and validate it into a `harma.study.model.Study` before Ray starts.

`load_study(path)` reads a study file (or `studies/<name>.yaml`); every error is a `StudyError` naming the file,
the key path (`scheduler.grace_period`, `search.space.optim.lr.low`) and what was expected.  Every run config a
study can produce is checked by building it with `harma.config` (the base, each ablation arm, each value of each
searched key and each pair of searched keys: see `harma.study.space_check`), together with the train batch
against the train split's size, so a typo fails in a second rather than an hour into a Ray job.  Names are at
most NAME_MAX characters.  The YAML loader reads `1e-5` as a float and refuses duplicate keys.  No Ray, no
Optuna here.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from harma import config as hconfig
from harma.config import ConfigError, RunConfig
from harma.errors import StudyError
from harma.results.root import default_results_root
from harma.metrics import METRIC_KEYS
from harma.study.checker import Checker, read_yaml
from harma.schedulers.base import SchedulerSpec, is_early_stopping
from harma.schedulers.registry import parse_scheduler
from harma.study.model import (KIND_ONLY_KEYS, OPTUNA_URL_SCHEMES, SPLITS, STORAGE_SCHEMES, TOP_KEYS, Objective,
                               Replicate, Resources, Search, Study, Tracking, _scheme, trial_base)

from harma.study.parse_space import parse_search
from harma.terms import KINDS, MODES, SEED_KEY

def resolve_study_path(name_or_path: str | os.PathLike) -> Path:
    """A study file path, or a bare name looked up as `studies/<name>.yaml` in the working directory."""
    p = Path(name_or_path)
    if p.is_file() or p.suffix in (".yaml", ".yml"):
        return p
    return Path("studies") / f"{p}.yaml"


def load_study(path: str | os.PathLike) -> Study:
    """Read and validate a study file (or `studies/<name>.yaml` for a bare name)."""
    p = resolve_study_path(path)
    return parse_study(read_yaml(p), source=str(p), folder=p.parent)


# ------------------------------------------------------------------------------------------------ parsing

def parse_study(data: Any, source: str = "<study>", folder: str | os.PathLike = ".") -> Study:
    """Validate a study mapping (as read from YAML) and build the `Study`."""
    c = Checker(source)
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
    objective = _parse_objective(c, data.get("objective"))
    make = _run_config_maker(base_config, trial_base(base_set, seeds[0], objective), resources.workers_per_trial)

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
        search = parse_search(c, data["search"], build, make, seeds, scheduler)
        warm = search.warm_start
        if warm is not None and (warm.study == name or warm.top_k > num_samples):
            raise c.fail("search.warm_start", f"another study than this one, and top_k <= num_samples "
                                              f"({num_samples})", {"study": warm.study, "top_k": warm.top_k})
    arms = _parse_arms(c, data, build) if kind == "ablation" else {}
    _refuse_objective_overrides(source, base_set, arms, search)

    storage, optuna_storage = _parse_storage(c, data, kind)

    max_concurrent = data.get("max_concurrent")
    if max_concurrent is not None:
        max_concurrent = c.integer("max_concurrent", max_concurrent, minimum=1)
    return Study(
        name=name, kind=kind, base_config=base_config, base_set=base_set, objective=objective,
        resources=resources,
        seeds=seeds, scheduler=scheduler, storage=storage, optuna_storage=optuna_storage,
        num_samples=num_samples, max_concurrent=max_concurrent, search=search, arms=arms,
        replicate=replicate, source=source, tracking=_parse_tracking(c, data.get("tracking")),
    )


def _parse_tracking(c: Checker, value: Any) -> Tracking:
    """`tracking: {tensorboard: true|false, mlflow: URI}` (both optional)."""
    if value is None:
        return Tracking()
    data = c.mapping("tracking", value, ("tensorboard", "mlflow"))
    tensorboard = c.boolean("tracking.tensorboard", data.get("tensorboard", True))
    uri = data.get("mlflow")
    if uri is not None:
        uri = c.string("tracking.mlflow", uri, "an MLflow tracking URI (http://HOST:PORT, sqlite:///FILE, ...)")
    return Tracking(tensorboard, uri)


OBJECTIVE_KEYS = ("train.objective", "train.objective_mode")   # set from the study's `objective`


def _parse_storage(c: Checker, data: dict, kind: str) -> tuple[str, str | None]:
    """(`storage`, `optuna_storage`): a search on a bucket needs an Optuna storage it can lock."""
    storage = c.string("storage", data.get("storage", default_results_root()),
                       "a local path or an s3:// gs:// file:// URI")
    if "://" in storage and _scheme(storage) not in STORAGE_SCHEMES:
        raise c.fail("storage", "a local path or an s3:// gs:// file:// URI", storage)
    optuna_storage = _parse_optuna_storage(c, data.get("optuna_storage"))
    if kind == "search" and optuna_storage is None and _scheme(storage) in ("s3", "gs"):
        raise c.fail("optuna_storage", f"a sqlite:///, postgresql://, mysql:// URL or journal:<path> "
                                       f"when storage is remote ({storage})", None)
    return storage, optuna_storage


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


def _parse_base(c: Checker, value: Any, folder: Path) -> tuple[str, dict[str, Any], RunConfig]:
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


def _parse_seeds(c: Checker, data: dict, base_set: dict, base_cfg: RunConfig) -> tuple[int, ...]:
    if "seeds" not in data:
        return (base_cfg.train.seed,)
    if SEED_KEY in base_set:
        raise StudyError(f"{c.source}: base.set.train.seed: remove it; the seed comes from `seeds`")
    return c.seeds("seeds", data["seeds"])


def _parse_objective(c: Checker, value: Any) -> Objective:
    if value is None:
        return Objective()
    obj = c.mapping("objective", value, ("metric", "split", "mode"))
    return Objective(
        metric=c.choice("objective.metric", obj.get("metric", "r_mean"), METRIC_KEYS),
        split=c.choice("objective.split", obj.get("split", "val"), SPLITS),
        mode=c.choice("objective.mode", obj.get("mode", "max"), MODES),
    )


def _parse_resources(c: Checker, value: Any) -> Resources:
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


def _check_gpu_split(c: Checker, res: Resources) -> None:
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


def _parse_scheduler(c: Checker, value: Any, kind: str, base_cfg: RunConfig) -> SchedulerSpec:
    """The scheduler's spec (harma.schedulers), then the study's rules for one that stops trials early: only a
    search may stop trials, and its epoch budget is the base config's train.epochs."""
    spec = parse_scheduler(c, "scheduler", value, base_cfg.train.epochs)
    if not is_early_stopping(spec):
        return spec
    if kind != "search":
        raise c.fail("scheduler.type", f"none for kind {kind} (every arm runs to the end)", spec.type)
    epochs = base_cfg.train.epochs
    if spec.max_epochs != epochs:
        raise c.fail("scheduler.max_epochs", f"equal to the base config's train.epochs ({epochs}); set "
                                             f"train.epochs under base.set", spec.max_epochs)
    return spec


def _parse_optuna_storage(c: Checker, value: Any) -> str | None:
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


def _parse_arms(c: Checker, data: dict, build: Callable[[Mapping[str, Any], str], RunConfig]
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
        if SEED_KEY in ov:
            raise StudyError(f"{c.source}: arms.{arm}.train.seed: remove it; the seed comes from `seeds`")
        build(ov, f"arms.{arm}")
        arms[arm] = ov
    return arms


def _parse_replicate(c: Checker, data: dict, top_seeds: tuple[int, ...], base_set: dict) -> Replicate:
    if "replicate" not in data:
        raise StudyError(f"{c.source}: replicate: required for kind replicate")
    rep = c.mapping("replicate", data["replicate"], ("from", "top_k", "seeds"), required=("from",))
    seeds = top_seeds
    if "seeds" in rep:
        if "seeds" in data:
            raise StudyError(f"{c.source}: replicate.seeds: give the seeds once, here or as top-level seeds")
        if SEED_KEY in base_set:
            raise StudyError(f"{c.source}: base.set.train.seed: remove it; the seed comes from replicate.seeds")
        seeds = c.seeds("replicate.seeds", rep["seeds"])
    return Replicate(
        source=c.name("replicate.from", rep["from"]),
        top_k=c.integer("replicate.top_k", rep.get("top_k", 1), minimum=1),
        seeds=seeds,
    )
