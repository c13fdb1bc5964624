"""The frozen backbone a process built last, kept for the next run in the same process (a Ray Tune trial actor
reused for the next trial: warm workers).  Keyed by everything that decides its weights (`BackboneKey`): the
arch, QuickGELU, the image size, the weights file's path, size and modification time (a file replaced or
changed is a miss, loaded and checked again), or the seed of a random init.  A hit hands out a deep copy of the
pristine CLIP (the adapters are injected into the copy), so every run starts from the same tensors a fresh
process would build.  On only where HARMA_BACKBONE_CACHE=1 (the study sets it for its trials): a plain `harma
train` keeps no second copy.  One entry: a new key replaces the old one.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Callable

from torch import nn

ENV = "HARMA_BACKBONE_CACHE"


@dataclass(frozen=True)
class BackboneKey:
    arch: str
    quick_gelu: bool
    image_size: int
    weights: str | None              # the resolved local file, or None for a random init
    weights_size: int | None
    weights_mtime_ns: int | None
    init_seed: int | None            # the random init's seed (None when weights overwrite every tensor)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


_entry: tuple[BackboneKey, nn.Module] | None = None
stats = CacheStats()


def enabled() -> bool:
    return os.environ.get(ENV, "0") == "1"


def backbone_key(arch: str, quick_gelu: bool, image_size: int, weights_file: str | None, seed: int) -> BackboneKey:
    """The key of a backbone: the weights file's identity from its stat (no hashing), or the init seed."""
    if weights_file is None:
        return BackboneKey(arch, quick_gelu, image_size, None, None, None, seed)
    st = os.stat(weights_file)
    return BackboneKey(arch, quick_gelu, image_size, os.path.realpath(weights_file), st.st_size, st.st_mtime_ns,
                       None)


def cached_backbone(key: BackboneKey, build: Callable[[], nn.Module]) -> nn.Module:
    """A backbone equal to `build()`: a copy of the cached one when `key` matches, else `build()` (kept for
    the next call when the cache is enabled)."""
    global _entry
    if not enabled():
        return build()
    if _entry is not None and _entry[0] == key:
        stats.hits += 1
        return copy.deepcopy(_entry[1])
    stats.misses += 1
    _entry = None                    # free the old backbone before building the new one
    clip = build()
    _entry = (key, copy.deepcopy(clip))
    return clip


def clear() -> None:
    """Forget the cached backbone and the counts."""
    global _entry
    _entry = None
    stats.hits = stats.misses = 0
