"""The train split's size, known before any data is loaded, and the check that a training batch fits in it.

The trainer draws batches with `drop_last=True` (and, under DDP, a DistributedSampler that also drops the
remainder), so each process needs at least `train.batch_size` of the split's `len // world` captions: with a
larger batch an epoch has no step, and every run fails.  `train_split_size` knows the size without loading
images: for a synthetic set it is a function of `data.synthetic_images`; for real data it is the number of
entries of `data.train_json` (one per caption), read once per file version.  When the file is missing or not
a json list it returns None and the check is left to the trainer, which names the file.  `check_batch_fits`
raises a ConfigError naming `train.batch_size`, the value and the split size.  No torch here.
"""
from __future__ import annotations

import functools
import json
import os

from harma.config import ConfigError, DataConfig, RunConfig, adapts
from harma.errors import DataError
from harma.data.synthetic import train_captions


def train_split_size(data: DataConfig) -> int | None:
    """Captions in the train split of `data`, or None when that is not known without loading the data."""
    if data.synthetic_images > 0:
        try:
            return train_captions(data.synthetic_images)
        except DataError:       # too few images: the trainer says so
            return None
    if not data.train_json:
        return None
    try:
        stat = os.stat(data.train_json)
    except OSError:
        return None
    return _entries(os.path.abspath(data.train_json), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _entries(path: str, mtime_ns: int, size: int) -> int | None:
    """Entries of a json list file (cached per path, modification time and size)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return len(data) if isinstance(data, list) else None


def _split_name(data: DataConfig) -> str:
    if data.synthetic_images > 0:
        return f"the synthetic set's train split (data.synthetic_images={data.synthetic_images})"
    return f"the train split {data.train_json}"


def check_batch_fits(cfg: RunConfig, world: int = 1) -> None:
    """ConfigError when `train.batch_size` exceeds the captions each of `world` processes gets in an epoch.
    A frozen model (`adapter.towers=none`) is only evaluated, so any batch size fits."""
    if not adapts(cfg):
        return
    size = train_split_size(cfg.data)
    if size is None:
        return
    per_process = size // world
    if cfg.train.batch_size <= per_process:
        return
    share = f", {per_process} for each of {world} processes" if world > 1 else ""
    raise ConfigError(f"train.batch_size: expected at most {per_process} ({_split_name(cfg.data)} has {size} "
                      f"captions{share}, and the trainer drops an incomplete last batch, so a larger batch gives "
                      f"no training step), got {cfg.train.batch_size}")
