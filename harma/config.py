"""Run configuration: frozen dataclasses per concern composed into `RunConfig`.

Every value a run depends on lives here.  Each dataclass validates itself in `__post_init__` and names the
bad field and what was expected.  One dotted-key override path (`adapter.bottleneck=64`) is shared by YAML
files, the CLI's `--set` and Ray Tune trials, so a searched parameter and a hand-written override are the
same thing.  Base configs ship as package data under `harma/configs/` and load by name.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from harma.errors import ConfigError
from harma.atomic import write_text_atomic
from harma.metrics import METRIC_KEYS, TIE_POLICIES
from harma.validate import is_int as _is_int
from harma.validate import is_num as _is_num


def _check(cond: bool, key: str, expected: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "ViT-B-32"          # open_clip model config name, or "tiny" (test-sized CLIP)
    weights: str | None = None      # local checkpoint file; None = random init
    quick_gelu: bool = False        # True for OpenAI-style weights (GeoRSCLIP)

    def __post_init__(self) -> None:
        _check(isinstance(self.arch, str) and self.arch != "", "model.arch", "an open_clip arch name", self.arch)
        _check(self.weights is None or isinstance(self.weights, str), "model.weights", "a file path or null",
               self.weights)
        _check(isinstance(self.quick_gelu, bool), "model.quick_gelu", "true or false", self.quick_gelu)


SHARE_MODES = ("none", "text", "both")
TOWER_MODES = ("both", "vision", "text", "none")
BLOCK_GATE_MODES = ("learned", "open")


@dataclass(frozen=True)
class AdapterConfig:
    bottleneck: int = 128           # MMadapter width r
    heads: int = 8                  # heads of both adapter attentions
    bishare_width: int = 64         # BiShareAdapter inner width (r/2 in the paper)
    gate_init: float = 0.6          # adapter gates (pre-sigmoid)
    block_gate_init: float = 0.6    # per-block gate g = sigmoid(block_gate)
    block_gate: str = "learned"     # "open": g fixed at 1 (z' = A(z)), not trained
    share: str = "text"             # where BiShareAdapters attach: none | text | both
    towers: str = "both"            # which towers get adapters: both | vision | text | none

    def __post_init__(self) -> None:
        _check(_is_int(self.bottleneck) and self.bottleneck >= 1, "adapter.bottleneck", "an int >= 1",
               self.bottleneck)
        _check(_is_int(self.heads) and self.heads >= 1, "adapter.heads", "an int >= 1", self.heads)
        _check(self.bottleneck % self.heads == 0, "adapter.bottleneck",
               f"a multiple of adapter.heads={self.heads}", self.bottleneck)
        _check(_is_int(self.bishare_width) and self.bishare_width >= 1, "adapter.bishare_width", "an int >= 1",
               self.bishare_width)
        _check(self.share == "none" or self.bishare_width % self.heads == 0, "adapter.bishare_width",
               f"a multiple of adapter.heads={self.heads}", self.bishare_width)
        _check(_is_num(self.gate_init), "adapter.gate_init", "a number", self.gate_init)
        _check(_is_num(self.block_gate_init), "adapter.block_gate_init", "a number", self.block_gate_init)
        _check(self.block_gate in BLOCK_GATE_MODES, "adapter.block_gate", f"one of {BLOCK_GATE_MODES}",
               self.block_gate)
        _check(self.share in SHARE_MODES, "adapter.share", f"one of {SHARE_MODES}", self.share)
        _check(self.towers in TOWER_MODES, "adapter.towers", f"one of {TOWER_MODES}", self.towers)


@dataclass(frozen=True)
class LossConfig:
    w_contr: float = 1.0
    w_triplet: float = 1.0
    w_affil: float = 0.0
    margin: float = 0.2
    gamma: float = 2.0
    max_violation: bool = False
    temp_init: float = 0.07
    temp_min: float | None = None   # optional clamp of the learnable temperature (authors: none)
    affil_temp: float = 0.1

    def __post_init__(self) -> None:
        for name in ("w_contr", "w_triplet", "w_affil"):
            v = getattr(self, name)
            _check(_is_num(v) and v >= 0, f"loss.{name}", "a number >= 0", v)
        _check(self.w_contr + self.w_triplet + self.w_affil > 0, "loss.w_contr",
               "at least one of loss.w_contr / w_triplet / w_affil > 0", (self.w_contr, self.w_triplet,
                                                                          self.w_affil))
        _check(_is_num(self.margin) and self.margin >= 0, "loss.margin", "a number >= 0", self.margin)
        _check(_is_num(self.gamma) and self.gamma >= 0, "loss.gamma", "a number >= 0", self.gamma)
        _check(isinstance(self.max_violation, bool), "loss.max_violation", "true or false", self.max_violation)
        _check(_is_num(self.temp_init) and self.temp_init > 0, "loss.temp_init", "a number > 0", self.temp_init)
        _check(self.temp_min is None or (_is_num(self.temp_min) and 0 < self.temp_min <= self.temp_init),
               "loss.temp_min", "null or a number in (0, loss.temp_init]", self.temp_min)
        _check(_is_num(self.affil_temp) and self.affil_temp > 0, "loss.affil_temp", "a number > 0",
               self.affil_temp)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 4e-6
    weight_decay: float = 0.04
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    warmup: float = 0.1             # fraction of all steps
    schedule: str = "linear"        # linear | cosine (decay after warm-up, per iteration)

    def __post_init__(self) -> None:
        _check(_is_num(self.lr) and self.lr > 0, "optim.lr", "a number > 0", self.lr)
        _check(_is_num(self.weight_decay) and self.weight_decay >= 0, "optim.weight_decay", "a number >= 0",
               self.weight_decay)
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            _check(_is_num(v) and 0 <= v < 1, f"optim.{name}", "a number in [0, 1)", v)
        _check(_is_num(self.eps) and self.eps > 0, "optim.eps", "a number > 0", self.eps)
        _check(_is_num(self.warmup) and 0 <= self.warmup < 1, "optim.warmup", "a fraction in [0, 1)",
               self.warmup)
        _check(self.schedule in ("linear", "cosine"), "optim.schedule", "linear or cosine", self.schedule)


AUTO_WORKERS = "auto"                # data.num_workers: one loader worker per CPU this process may use, but one
MAX_AUTO_WORKERS = 8                 # ... and at most this many (each is a process holding the data set)


def loader_workers(data: "DataConfig") -> int:
    """The loader workers `data.num_workers` asks for: the number, or for `auto` the CPUs this process may use
    (its affinity, e.g. what taskset or a container allows) less the one it trains on, at most MAX_AUTO_WORKERS."""
    if data.num_workers != AUTO_WORKERS:
        return int(data.num_workers)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:          # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(0, min(cpus - 1, MAX_AUTO_WORKERS))


@dataclass(frozen=True)
class DataConfig:
    image_root: str | None = None   # joined with each annotation entry's "image"
    train_json: str | None = None
    val_json: str | None = None
    test_json: str | None = None
    synthetic_images: int = 0       # > 0: use (and create if missing) a synthetic set of this many images
    synthetic_seed: int = 0
    image_size: int = 224
    max_words: int = 30
    cache: bool = True              # decoded-image cache (uint8, memory-mapped)
    cache_dir: str | None = None    # default: <image_root>/.harma-cache
    num_workers: int | str = AUTO_WORKERS  # loader worker processes; auto: the CPUs this process may use - 1
    prefetch_factor: int = 4        # batches each loader worker keeps ready (with num_workers > 0)

    def __post_init__(self) -> None:
        _check(_is_int(self.synthetic_images) and self.synthetic_images >= 0, "data.synthetic_images",
               "an int >= 0", self.synthetic_images)
        _check(_is_int(self.synthetic_seed), "data.synthetic_seed", "an int", self.synthetic_seed)
        if self.synthetic_images == 0:
            for name in ("train_json", "val_json", "test_json", "image_root"):
                v = getattr(self, name)
                _check(v is None or isinstance(v, str), f"data.{name}", "a path or null", v)
        else:
            for name in ("train_json", "val_json", "test_json"):
                _check(getattr(self, name) is None, f"data.{name}",
                       "null when data.synthetic_images > 0 (the synthetic set writes its own)", getattr(self, name))
        _check(_is_int(self.image_size) and self.image_size >= 8, "data.image_size", "an int >= 8",
               self.image_size)
        _check(_is_int(self.max_words) and self.max_words >= 1, "data.max_words", "an int >= 1", self.max_words)
        _check(isinstance(self.cache, bool), "data.cache", "true or false", self.cache)
        _check(self.num_workers == AUTO_WORKERS or (_is_int(self.num_workers) and self.num_workers >= 0),
               "data.num_workers", f"an int >= 0 or {AUTO_WORKERS}", self.num_workers)
        _check(_is_int(self.prefetch_factor) and self.prefetch_factor >= 1, "data.prefetch_factor",
               "an int >= 1", self.prefetch_factor)


COMPILE_MODES = ("off", "auto", "default", "reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class EvalConfig:
    ties: str = "expected"          # retrieval tie policy: expected | optimistic | pessimistic (harma.metrics)

    def __post_init__(self) -> None:
        _check(self.ties in TIE_POLICIES, "eval.ties", f"one of {TIE_POLICIES}", self.ties)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 80
    batch_size: int = 214           # per process
    eval_batch_size: int = 256
    seed: int = 3407
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    precision: str = "fp32"         # fp32 | bf16 (autocast, training and evaluation, on any device)
    tf32: bool = True               # fp32 matmuls on CUDA use TF32 tensor cores (no effect on CPU)
    compile: str = "off"            # torch.compile of the training forward and eval encoders (harma.compiled): off |
    #                                 auto (reduce-overhead on CUDA, off on CPU; study trials on a GPU) | default |
    #                                 reduce-overhead (CUDA graphs) | max-autotune
    finite_check_every: int = 50    # steps between host reads of the on-device NaN/inf guard (and at epoch end)
    out_dir: str = "runs/harma"
    resume: bool = True             # continue from <out_dir>/last.pt when it exists
    max_steps_per_epoch: int = 0    # 0 = full epoch (a cap for smoke runs)
    objective: str = "r_mean"       # the val metric the best epoch is chosen on (a study sets its own)
    objective_mode: str = "max"     # max | min

    def __post_init__(self) -> None:
        _check(_is_int(self.epochs) and self.epochs >= 1, "train.epochs", "an int >= 1", self.epochs)
        _check(_is_int(self.batch_size) and self.batch_size >= 2, "train.batch_size", "an int >= 2",
               self.batch_size)
        _check(_is_int(self.eval_batch_size) and self.eval_batch_size >= 1, "train.eval_batch_size",
               "an int >= 1", self.eval_batch_size)
        _check(_is_int(self.seed), "train.seed", "an int", self.seed)
        _check(isinstance(self.device, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
               "train.device", "auto, cpu, cuda or cuda:N", self.device)
        _check(self.precision in ("fp32", "bf16"), "train.precision", "fp32 or bf16", self.precision)
        _check(isinstance(self.tf32, bool), "train.tf32", "true or false", self.tf32)
        _check(self.compile in COMPILE_MODES, "train.compile", f"one of {COMPILE_MODES}", self.compile)
        _check(_is_int(self.finite_check_every) and self.finite_check_every >= 1, "train.finite_check_every",
               "an int >= 1", self.finite_check_every)
        _check(isinstance(self.out_dir, str) and self.out_dir != "", "train.out_dir", "a directory path",
               self.out_dir)
        _check(isinstance(self.resume, bool), "train.resume", "true or false", self.resume)
        _check(_is_int(self.max_steps_per_epoch) and self.max_steps_per_epoch >= 0,
               "train.max_steps_per_epoch", "an int >= 0", self.max_steps_per_epoch)
        _check(self.objective in METRIC_KEYS, "train.objective", f"one of {METRIC_KEYS}", self.objective)
        _check(self.objective_mode in ("max", "min"), "train.objective_mode", "max or min", self.objective_mode)


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


SECTIONS = tuple(f.name for f in fields(RunConfig))


def _section_class(name: str) -> type:
    return {"model": ModelConfig, "adapter": AdapterConfig, "loss": LossConfig, "optim": OptimConfig,
            "data": DataConfig, "train": TrainConfig, "eval": EvalConfig}[name]


def valid_keys() -> list[str]:
    """Every dotted key a config accepts, e.g. `adapter.bottleneck`."""
    return [f"{s}.{f.name}" for s in SECTIONS for f in fields(_section_class(s))]


def _coerce(value: Any, annotation: str) -> Any:
    """Widen YAML ints to floats where a float is expected; everything else is validated by the dataclass."""
    if "float" in annotation and _is_int(value):
        return float(value)
    if "float" in annotation and isinstance(value, str):
        try:  # YAML 1.1 reads `4e-6` (no dot) as a string
            return float(value)
        except ValueError:
            return value
    return value


def from_dict(data: Mapping[str, Any], base: RunConfig | None = None) -> RunConfig:
    """Build a RunConfig from a nested mapping; unknown sections or keys are errors listing the valid ones."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: expected a mapping of sections {list(SECTIONS)}, got {type(data).__name__}")
    base = base or RunConfig()
    sections = {}
    for name, values in data.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown config section {name!r}; valid sections: {', '.join(SECTIONS)}")
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"{name}: expected a mapping of keys, got {values!r}")
        cls = _section_class(name)
        known = {f.name: f for f in fields(cls)}
        current = getattr(base, name)
        changes = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown config key {name}.{key}; valid keys of {name}: "
                                  f"{', '.join(known)}")
            changes[key] = _coerce(value, str(known[key].type))
        sections[name] = replace(current, **changes)
    return replace(base, **sections)


def to_dict(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    return dataclasses.asdict(cfg)


def parse_override(text: str) -> tuple[str, Any]:
    """`adapter.bottleneck=64` -> ("adapter.bottleneck", 64); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. adapter.bottleneck=64")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {key}: value {raw!r} is not valid YAML ({exc})") from None
    return key, value


def overrides_to_nested(overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        parts = key.split(".")
        if len(parts) != 2:
            raise ConfigError(f"override key {key!r}: expected SECTION.KEY; valid keys: {', '.join(valid_keys())}")
        nested.setdefault(parts[0], {})[parts[1]] = value
    return nested


def apply_overrides(cfg: RunConfig, overrides: Mapping[str, Any] | Sequence[str]) -> RunConfig:
    """Apply dotted overrides, given as a mapping or as `KEY=VALUE` strings (the CLI's `--set`)."""
    if not isinstance(overrides, Mapping):
        overrides = dict(parse_override(o) for o in overrides)
    return from_dict(overrides_to_nested(overrides), base=cfg)


def builtin_names() -> list[str]:
    folder = resources.files("harma") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_yaml(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p}: not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p}: not valid YAML ({exc})") from None
    return data


def load_config(name_or_path: str, overrides: Mapping[str, Any] | Sequence[str] = ()) -> RunConfig:
    """Load a shipped config by name (`rsitmd-geo`) or a YAML file, then apply dotted overrides."""
    if name_or_path in builtin_names():
        text = (resources.files("harma") / "configs" / f"{name_or_path}.yaml").read_text()
        data = yaml.safe_load(text) or {}
    elif Path(name_or_path).suffix in (".yaml", ".yml") or Path(name_or_path).exists():
        data = load_yaml(name_or_path)
    else:
        raise ConfigError(f"config {name_or_path!r}: not a shipped config ({', '.join(builtin_names())}) "
                          f"nor an existing YAML file")
    return apply_overrides(from_dict(data), overrides)


def save_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write the config as YAML atomically (temporary name, then rename)."""
    write_text_atomic(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))


def flat_dict(cfg: RunConfig) -> dict[str, Any]:
    """{"adapter.bottleneck": 128, ...} for every key."""
    return {f"{s}.{k}": v for s, sec in to_dict(cfg).items() for k, v in sec.items()}


def adapts(cfg: RunConfig) -> bool:
    """Whether a model built from `cfg` trains at all: adapters in some tower (the frozen arm,
    `adapter.towers=none`, has none and is evaluated once)."""
    return cfg.adapter.towers != "none"


def trains_temperature(cfg: RunConfig) -> bool:
    """The contrastive temperature trains when the model does and the contrastive loss is used."""
    return adapts(cfg) and cfg.loss.w_contr > 0


def planned_epochs(cfg: RunConfig) -> int:
    """`train.epochs` for a model that trains; 1 (one evaluation) for the frozen arm."""
    return cfg.train.epochs if adapts(cfg) else 1


# Keys a run may change when it resumes from its checkpoint: where and how fast it runs, and how long it trains.
RESUME_FREE_KEYS = frozenset({
    "train.epochs", "train.device", "train.out_dir", "train.resume", "train.eval_batch_size", "train.compile",
    "train.tf32", "train.finite_check_every", "data.num_workers", "data.prefetch_factor", "data.cache",
    "data.cache_dir"})


def resume_conflicts(saved: RunConfig, cfg: RunConfig) -> list[str]:
    """`key: saved -> new` for every key outside RESUME_FREE_KEYS whose value differs."""
    old, new = flat_dict(saved), flat_dict(cfg)
    return [f"{k}: {old[k]!r} -> {new[k]!r}" for k in new if k not in RESUME_FREE_KEYS and old.get(k) != new[k]]
