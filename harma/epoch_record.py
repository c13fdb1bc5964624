"""What the trainer reports once per epoch (`EpochRecord`), what it returns (`TrainSummary`), and the names of
every key of an epoch's flat view.

An `EpochRecord` holds this epoch's val and test metrics, the epoch's mean of each train loss term, the
learning rate, timings (of which `compile_seconds`, torch's compiling inside this epoch, already counted in
`epoch_seconds`), the best-val epoch so far with its val and test metrics, parameter counts, peak memory and the
process's one-line compile notes (a fallback to eager; None when there is none).  `to_dict()` is the JSON
layout of a `log.jsonl` line and of the history a checkpoint stores (plain dicts, so `weights_only=True` loading
reads it); `from_dict()` reads either back, older layouts included.
`flat()` is the flat metrics dict a Tune trial reports.  This module owns the flat names: `metric_key` is THIS
epoch's value (`val_r_mean`), `best_metric_key` the BEST epoch's (`best_val_r_mean`), and every key that
`is_loss_key` (`loss`, `loss_<term>`) is a train loss term, so a loss term the trainer adds reaches the log,
the console, Tune and the epochs table (`curves`) without any list naming it.  No torch here.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from harma.terms import EVAL_SPLITS
from harma.metrics import METRIC_KEYS

LOSS = "loss"                                   # the weighted total; its term `t` is `loss_t`
TRAIN_SPLIT = "train"
TRAIN_RATES = ("lr", "images_per_s")            # the train curves besides the loss terms
MEMORY_KEYS = ("peak_rss_bytes", "peak_gpu_bytes")
_METRIC_FIELDS = ("val", "test", "train", "best_val", "best_test")


def metric_key(split: str, metric: str) -> str:
    """`<split>_<metric>`: this epoch's value of `metric` on `split` in the flat view, e.g. `val_r_mean`."""
    return f"{split}_{metric}"


def best_metric_key(split: str, metric: str) -> str:
    """`best_<split>_<metric>`: the value at the best-val epoch so far in the flat view, e.g. `best_val_r_mean`."""
    return f"best_{metric_key(split, metric)}"


def loss_key(term: str) -> str:
    """`loss` for the weighted total (`term == "loss"`), `loss_<term>` for one of its terms."""
    return LOSS if term == LOSS else f"{LOSS}_{term}"


def is_loss_key(key: str) -> bool:
    """key == `loss` or key starts with `loss_`."""
    return key == LOSS or key.startswith(f"{LOSS}_")


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a run as the trainer reports it (metrics dicts as `harma.metrics.retrieval_metrics` gives)."""
    epoch: int
    val: Mapping[str, float]
    test: Mapping[str, float]
    train: Mapping[str, float]                  # {loss_key(term): the epoch's mean}; empty when nothing trains
    lr: float
    epoch_seconds: float
    train_seconds: float
    images_per_s: float
    best_epoch: int                             # the best-val epoch so far (this one included)
    best_val: Mapping[str, float]
    best_test: Mapping[str, float]
    trainable_params: int
    total_params: int
    peak_rss_bytes: int | None = None
    peak_gpu_bytes: int | None = None           # None off CUDA
    compile_seconds: float = 0.0                # torch compiling inside this epoch (part of epoch_seconds)
    compile_notes: str | None = None            # harma.compiled.notes: a fallback to eager, in one line

    @property
    def improved(self) -> bool:
        """This epoch is the best so far."""
        return self.best_epoch == self.epoch

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready layout of a log line and a checkpoint's history entry (fields in declaration order)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: dict(v) if k in _METRIC_FIELDS else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EpochRecord":
        """The record of a log line or history entry; keys it does not know are left out, absent memory is None."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: dict(v) if k in _METRIC_FIELDS else v for k, v in data.items() if k in known})

    def flat(self) -> dict[str, float | int]:
        """{epoch, val_<m>, test_<m> (every metric), best_val_<m>, best_test_<m> (METRIC_KEYS), every loss term,
        lr, epoch_seconds, compile_seconds, images_per_s, best_epoch, trainable_params, total_params, the memory
        known}."""
        flat: dict[str, float | int] = {"epoch": int(self.epoch)}
        for split, metrics in zip(EVAL_SPLITS, (self.val, self.test)):
            flat.update({metric_key(split, k): float(v) for k, v in metrics.items()})
        for split, metrics in zip(EVAL_SPLITS, (self.best_val, self.best_test)):
            flat.update({best_metric_key(split, k): float(metrics[k]) for k in METRIC_KEYS})
        flat.update({k: float(v) for k, v in self.train.items()})
        flat.update({k: float(getattr(self, k)) for k in ("lr", "epoch_seconds", "compile_seconds",
                                                          "images_per_s")})
        flat.update({k: int(getattr(self, k)) for k in ("best_epoch", "trainable_params", "total_params")})
        flat.update({k: int(getattr(self, k)) for k in MEMORY_KEYS if getattr(self, k) is not None})
        return flat


def curves(flat: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{split: {metric: value}} of an epoch's flat view, as the epochs table holds it: val and test metrics
    (their `<split>_` keys), and for train every loss term with lr and images_per_s."""
    out = {split: {k[len(split) + 1:]: float(v) for k, v in flat.items() if k.startswith(f"{split}_")}
           for split in EVAL_SPLITS}
    out[TRAIN_SPLIT] = {k: float(v) for k, v in flat.items() if is_loss_key(k)}
    out[TRAIN_SPLIT].update({k: float(flat[k]) for k in TRAIN_RATES if k in flat})
    return out


@dataclass(frozen=True)
class TrainSummary:
    """What `train()` returns: the best-val epoch with its val metrics and the test metrics at it, the size and
    cost of the run, and every epoch's record."""
    best_epoch: int
    best_val: Mapping[str, float]
    test_at_best_val: Mapping[str, float]
    epochs_run: int
    trainable_params: int
    total_params: int
    wall_seconds: float
    peak_rss_bytes: int | None
    peak_gpu_bytes: int | None
    world_size: int
    out_dir: str
    history: tuple[EpochRecord, ...]
