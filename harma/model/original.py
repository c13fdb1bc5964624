"""Load the authors' released HarMA checkpoints (`checkpoint_best.pth`) into a harma model.

Their layout: `{"model": {"temp", "model.<open_clip key>", "model.<tower>.resblocks.<i>.gate1",
"model.<tower>.resblocks.<i>.mmadapter.<...>", "...mmadapter.BiShareAdapterxx.<...>"}}`.  Their adapter
tensors do not depend on sequence-first layout, so each maps 1:1 onto ours once the key is translated:
`model.` -> `clip.`, a block's own `mlp.` -> `mlp.mlp.`, block-level `gate1`/`mmadapter` move under our
`mlp` wrapper, and `BiShareAdapterxx` -> `bishare`.  Unmatched keys are reported; a shape mismatch fails.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from harma.model.build import WeightsError

_BLOCK = re.compile(r"^(?P<tower>(?:visual\.)?transformer\.resblocks\.\d+)\.(?P<rest>.+)$")


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    unmatched_checkpoint_keys: list[str] = field(default_factory=list)
    missing_model_keys: list[str] = field(default_factory=list)


def translate_key(key: str, wrapped_blocks: set[str]) -> str:
    """Authors' key -> harma key (`model.visual.transformer.resblocks.3.mmadapter.gate1` ->
    `clip.visual.transformer.resblocks.3.mlp.mmadapter.gate1`)."""
    if key == "temp":
        return "temp"
    if key.startswith("model."):
        key = key[len("model."):]
    m = _BLOCK.match(key)
    if m and m.group("tower") in wrapped_blocks:
        rest = m.group("rest").replace("BiShareAdapterxx.", "bishare.")
        if rest.startswith(("mlp.", "mmadapter.")) or rest == "gate1":
            key = f"{m.group('tower')}.mlp.{rest}"
    return f"clip.{key}"


def _wrapped_blocks(model: nn.Module) -> set[str]:
    from harma.model.adapters import AdaptedMLP

    return {name[len("clip."):-len(".mlp")] for name, mod in model.named_modules()
            if isinstance(mod, AdaptedMLP) and name.startswith("clip.")}


def _unwrap(obj: object) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"authors' checkpoint: expected a dict with key 'model', got {type(obj).__name__}")
    return obj


def load_original_checkpoint(model: nn.Module, path_or_state_dict: str | Path | Mapping) -> LoadReport:
    """Copy every tensor of an authors' checkpoint into `model`; returns what matched and what did not."""
    if isinstance(path_or_state_dict, (str, Path)):
        p = Path(path_or_state_dict)
        if not p.is_file():
            raise WeightsError(f"checkpoint {p}: file not found")
        path_or_state_dict = torch.load(p, map_location="cpu", weights_only=True)
    source = _unwrap(path_or_state_dict)
    own = model.state_dict()
    wrapped = _wrapped_blocks(model)
    report, updates, shapes = LoadReport(), {}, []
    for key, tensor in source.items():
        ours = translate_key(key, wrapped)
        if ours not in own:
            report.unmatched_checkpoint_keys.append(key)
            continue
        if tuple(own[ours].shape) != tuple(tensor.shape):
            shapes.append(f"{key} {tuple(tensor.shape)} -> {ours} {tuple(own[ours].shape)}")
            continue
        updates[ours] = tensor
        report.loaded.append(key)
    if shapes:
        raise WeightsError("authors' checkpoint: shape mismatch for " + "; ".join(shapes[:8])
                           + (f" ... ({len(shapes)} in all)" if len(shapes) > 8 else ""))
    report.missing_model_keys = sorted(set(own) - set(updates))
    model.load_state_dict(updates, strict=False)
    return report
