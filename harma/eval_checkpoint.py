"""Evaluate a checkpoint on val/test: a harma checkpoint (trainable tensors) or the authors' released
`checkpoint_best.pth` (translated by harma.model.original).  The run starts as training does
(`harma.runtime.start`: the device, TF32 as `train.tf32` says) and the model is built after seeding with
`train.seed`, as the trainer does, so a random-init backbone (tests, synthetic runs) is the one it trained."""
from __future__ import annotations

from pathlib import Path

from harma import runtime
from harma.checkpoint import CheckpointError, is_harma_checkpoint, load_checkpoint, load_trainable
from harma.config import RunConfig
from harma.evaluate import evaluate_split
from harma.model.build import WeightsError, build_model, tokenizer_for
from harma.model.original import load_original_checkpoint


def evaluate_checkpoint(cfg: RunConfig, checkpoint: str, splits=("val", "test")) -> dict:
    path = Path(checkpoint)
    if not path.is_file():
        raise WeightsError(f"--checkpoint {path}: file not found")
    device = runtime.start(cfg.train)
    runtime.seed_everything(cfg.train.seed)
    model = build_model(cfg)
    obj = load_checkpoint(path)
    result: dict = {"checkpoint": str(path)}
    if is_harma_checkpoint(obj):
        load_trainable(model, obj["trainable"], str(path))
        result["format"] = "harma"
    else:
        try:
            report = load_original_checkpoint(model, obj)
        except WeightsError as exc:
            raise CheckpointError(f"checkpoint {path}: {exc}") from None
        if not report.loaded:
            raise CheckpointError(f"checkpoint {path}: neither a harma checkpoint (no 'trainable' key) nor an "
                                  f"authors' checkpoint that fits model.arch {cfg.model.arch!r} (none of its "
                                  f"{len(report.unmatched_checkpoint_keys)} tensor(s) matched)")
        result["format"] = "authors"
        result["loaded_tensors"] = len(report.loaded)
        result["unmatched_checkpoint_keys"] = report.unmatched_checkpoint_keys
    model.to(device)
    from harma.data import build_datasets

    data = build_datasets(cfg.data, tokenizer_for(cfg))
    for split in splits:
        result[split] = evaluate_split(model, getattr(data, split), cfg, device)
    return result
