"""Small, atomic checkpoints: only trainable tensors plus optimizer/scheduler state and the training history.

`last.pt` lets a run resume at the next epoch; `best.pt` holds the trainable tensors of the best-val epoch.
Files are written under a temporary name and renamed, so a crash never leaves a half-written checkpoint.
Every checkpoint is read with `weights_only=True`: a file that needs code to unpickle is refused, never run.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from harma.errors import CheckpointError
from harma.atomic import write_atomic

if TYPE_CHECKING:
    from harma.model.build import HarmaModel


def trainable_state(model: "HarmaModel") -> dict[str, torch.Tensor]:
    """{name: a CPU copy} of each of `model.adapter_params()`: the tensors a checkpoint keeps."""
    return {name: p.detach().cpu().clone() for name, p in model.adapter_params().items()}


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save `obj` to `path` atomically (harma.atomic)."""
    write_atomic(path, lambda fh: torch.save(obj, fh))


def load_checkpoint(path: Path) -> Any:
    """torch.load(path, weights_only=True) on CPU; CheckpointError naming the file when that fails."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles with code, truncated or foreign files all land here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"checkpoint {path}: cannot be loaded with weights_only=True "
                              f"({type(exc).__name__}: {first})") from None


def load_trainable(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a trainable-only state dict; every key must exist in the model with the same shape."""
    own = model.state_dict()
    unknown = sorted(k for k in state if k not in own)
    shapes = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    if unknown or shapes:
        raise CheckpointError(f"checkpoint {source}: does not fit this config: unknown keys {unknown[:8]}, "
                         f"shape mismatches {shapes[:8]}")
    model.load_state_dict(state, strict=False)


def is_harma_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and "trainable" in obj
