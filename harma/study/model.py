"""Studies: the frozen model of a search, an ablation or a replicate study (`Study` and its parts).

`load_study(path)` (from `harma.study.parse`, re-exported here) reads and validates a study file into a
`Study`; every error is a `StudyError` naming the file, the key path and what was expected.  A `Study` builds
its run configs (`run_config`, with the study's seed and objective), lists the trials of ablations and
replicates, and says where its results and Optuna storage live.  This module imports neither Ray nor Optuna.

Conventions: `resources.gpus_per_trial` is the total for one trial, split evenly across its
`workers_per_trial` DDP workers (`Resources.gpus_per_worker`); `cpus_per_worker` is per worker; `custom`
resources are per trial.  Relative `storage` and `journal:` paths are relative to the working directory;
a relative `base.config` path is looked up next to the study file first, then in the working directory.
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from harma.errors import StudyError
from harma import config as hconfig
from harma.config import RunConfig
from harma.results.root import default_results_root
from harma.schedulers.base import SchedulerSpec
from harma.terms import EVAL_SPLITS, SEED_KEY

SPLITS = EVAL_SPLITS
PARAM_TYPES = ("float", "int", "categorical")
STORAGE_SCHEMES = ("s3", "gs", "file")
OPTUNA_URL_SCHEMES = ("sqlite", "postgresql", "mysql")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_RULE = "a name of letters, digits, '_', '.', '-' starting with a letter or digit"
NAME_MAX = 100   # names become file and folder names (with prefixes and suffixes): well under 255 bytes

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le,
    "eq": operator.eq, "ne": operator.ne,
}
ORDER_OPS = ("gt", "ge", "lt", "le")

TOP_KEYS = ("name", "kind", "base", "objective", "resources", "num_samples", "max_concurrent", "seeds",
            "scheduler", "storage", "optuna_storage", "search", "arms", "replicate", "tracking")
KIND_ONLY_KEYS = {"num_samples": "search", "search": "search", "arms": "ablation", "replicate": "replicate"}


# ----------------------------------------------------------------------------------------------- dataclasses

@dataclass(frozen=True)
class Objective:
    metric: str = "r_mean"
    split: str = "val"               # val | test
    mode: str = "max"                # max | min

    @property
    def direction(self) -> str:
        """Optuna's name for the mode: "maximize" or "minimize"."""
        return "maximize" if self.mode == "max" else "minimize"


@dataclass(frozen=True)
class Resources:
    gpus_per_trial: float = 0.0      # total for the trial (0 = CPU only), split evenly across the workers
    cpus_per_worker: float = 1.0
    workers_per_trial: int = 1       # DDP processes inside one trial
    custom: dict[str, float] = field(default_factory=dict)   # custom Ray resources for the whole trial

    @property
    def gpus_per_worker(self) -> float:
        return self.gpus_per_trial / self.workers_per_trial

    @property
    def cpus_per_trial(self) -> float:
        return self.cpus_per_worker * self.workers_per_trial


@dataclass(frozen=True)
class Condition:
    """`key op value`, e.g. loss.w_triplet gt 0; `key` is another searched key or a base config key."""
    key: str
    op: str
    value: Any

    def holds(self, current: Any) -> bool:
        try:
            return bool(OPS[self.op](current, self.value))
        except TypeError:            # e.g. None > 0: an ordering against a missing value is false
            return False


@dataclass(frozen=True)
class ParamSpec:
    """One searched dotted config key: float / int range or categorical choices, maybe conditional."""
    key: str
    type: str                        # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None          # int only
    log: bool = False
    choices: tuple = ()
    when: Condition | None = None

    def edge_values(self) -> tuple:
        """Values worth validating against a config: the range ends or every choice."""
        return self.choices if self.type == "categorical" else (self.low, self.high)


@dataclass(frozen=True)
class SamplerSpec:
    seed: int | None = None          # default: the study's first seed
    n_startup_trials: int = 10


@dataclass(frozen=True)
class WarmStart:
    """Seed a search with the best COMPLETE trials of another study in the same results root."""
    study: str
    top_k: int = 5


@dataclass(frozen=True)
class Search:
    space: dict[str, ParamSpec]      # in dependency order: a condition's key comes before its dependants
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    warm_start: WarmStart | None = None


@dataclass(frozen=True)
class Replicate:
    source: str                      # the search study whose best trials are re-run (`from` in YAML)
    top_k: int
    seeds: tuple[int, ...]


def trial_base(base_set: Mapping[str, Any], seed: int, objective: Objective) -> dict[str, Any]:
    """The overrides every run config of a study starts from: `base.set`, a seed, and the study's objective
    (`train.objective`, `train.objective_mode`: the trainer picks its best epoch on it)."""
    return {**base_set, SEED_KEY: seed, "train.objective": objective.metric,
            "train.objective_mode": objective.mode}


@dataclass(frozen=True)
class Tracking:
    """Where a study's curves go besides Parquet: TensorBoard event files per trial (on unless switched off) and
    MLflow runs at a tracking URI (off unless given)."""
    tensorboard: bool = True
    mlflow: str | None = None


@dataclass(frozen=True)
class Study:
    name: str
    kind: str                                        # search | ablation | replicate
    base_config: str                                 # shipped config name or YAML path
    base_set: dict[str, Any]                         # dotted overrides applied to the base config
    objective: Objective
    resources: Resources
    seeds: tuple[int, ...]
    scheduler: SchedulerSpec                          # a harma.schedulers spec (registry)
    storage: str = field(default_factory=default_results_root)   # local path or s3:// gs:// file:// URI
    optuna_storage: str | None = None                # None: sqlite file under <storage>/optuna/
    num_samples: int | None = None                   # search only
    max_concurrent: int | None = None                # None: derived from the cluster
    search: Search | None = None                     # search only
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)   # ablation only
    replicate: Replicate | None = None               # replicate only
    source: str = ""                                 # the study file
    tracking: Tracking = field(default_factory=Tracking)

    # -- run configs --------------------------------------------------------------------------------------
    def run_config(self, overrides: Mapping[str, Any] | None = None) -> RunConfig:
        """Base config + `base.set` + `train.seed = seeds[0]` + the study's objective (`train.objective`,
        `train.objective_mode`: the trainer picks its best epoch on it) + the given dotted overrides."""
        merged = {**trial_base(self.base_set, self.seeds[0], self.objective), **dict(overrides or {})}
        return hconfig.load_config(self.base_config, merged)

    def base_values(self) -> dict[str, Any]:
        """Every dotted key of the base run config (what an unsearched or skipped key is worth)."""
        return hconfig.flat_dict(self.run_config({}))

    @property
    def total_gpus_per_trial(self) -> float:
        """GPUs one trial holds, all its workers together (`resources.gpus_per_trial`)."""
        return self.resources.gpus_per_trial

    # -- trials of ablation and replicate studies -------------------------------------------------------
    def trial_overrides(self) -> list[tuple[str, int, dict[str, Any]]]:
        """Ablation: `(arm, seed, overrides)` for every seed and arm, seed-major, `train.seed` set."""
        if self.kind != "ablation":
            raise StudyError(f"{self.source}: kind: trial_overrides() needs kind ablation, got {self.kind!r}"
                             + ("; use replicate_overrides(candidates)" if self.kind == "replicate" else ""))
        return [(arm, seed, {**overrides, SEED_KEY: seed})
                for seed in self.seeds for arm, overrides in self.arms.items()]

    def replicate_overrides(self, candidates: Sequence[tuple[str, Mapping[str, Any]]]
                            ) -> list[tuple[str, int, dict[str, Any]]]:
        """Replicate: `(label, seed, overrides)` for the source study's best trials given as `(label,
        overrides)`, best first; keeps the first `replicate.top_k`, runs each for every seed."""
        if self.kind != "replicate" or self.replicate is None:
            raise StudyError(f"{self.source}: kind: replicate_overrides() needs kind replicate, got {self.kind!r}")
        chosen = list(candidates)[: self.replicate.top_k]
        return [(label, seed, {**dict(overrides), SEED_KEY: seed})
                for seed in self.seeds for label, overrides in chosen]

    # -- storage ----------------------------------------------------------------------------------------
    @property
    def storage_is_remote(self) -> bool:
        return _scheme(self.storage) in ("s3", "gs")

    def storage_path(self) -> str:
        """Results root for Ray: an absolute local path, or the s3:// / gs:// URI unchanged."""
        if self.storage_is_remote:
            return self.storage
        return str(_local_path(self.storage).resolve())

    def optuna_storage_url(self) -> str:
        """The Optuna storage: `optuna_storage` as given, else `sqlite:///<storage>/optuna/<name>.db`."""
        if self.optuna_storage is not None:
            return self.optuna_storage
        if self.storage_is_remote:
            raise StudyError(f"{self.source}: optuna_storage: expected a sqlite:///, postgresql://, mysql:// "
                             f"URL or journal:<path> when storage is remote ({self.storage})")
        return "sqlite:///" + str(Path(self.storage_path()) / "optuna" / f"{self.name}.db")


def dependency_order(space: Mapping[str, ParamSpec]) -> list[str]:
    """Space keys ordered so that a condition's key (when searched) comes before the key it guards;
    otherwise in the given order.  Raises StudyError on a cycle."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(key: str, chain: list[str]) -> None:
        if state.get(key) == "done":
            return
        if state.get(key) == "visiting":
            raise StudyError(f"search.space.{key}.when: conditions form a cycle: {' -> '.join(chain + [key])}")
        state[key] = "visiting"
        cond = space[key].when
        if cond is not None and cond.key in space:
            visit(cond.key, chain + [key])
        state[key] = "done"
        order.append(key)

    for key in space:
        visit(key, [])
    return order


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0].lower() if "://" in uri else ""


def _local_path(storage: str) -> Path:
    return (Path(storage[len("file://"):]) if _scheme(storage) == "file" else Path(storage)).expanduser()

