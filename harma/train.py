"""The Ray-free HarMA trainer: `train(cfg, report=callback) -> summary`.

Read it top to bottom: set up the device (and DDP when launched by torchrun), build the model and data,
then for each epoch train (losses on the batch gathered across ranks), evaluate val and test, keep the best
epoch by the val objective, save small atomic checkpoints, append a JSON line to the log, and only then call
`report` once: a report always finds its epoch's weights on disk.  A frozen model (`adapter.towers=none`) is
evaluated once and not trained.  A NaN/inf loss or val objective stops the run with an error naming the epoch.
"""
from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from harma import distributed as dist_utils
from harma.atomic import make_private_dirs, remove_debris
from harma.checkpoint import load_checkpoint, load_trainable, save_atomic, trainable_state
from harma.config import ConfigError, RunConfig, load_config, resume_conflicts, save_config, write_text_atomic
from harma.evaluate import evaluate_split
from harma.model.adapters import ADAPTER_TYPES
from harma.model.build import build_model, tokenizer_for
from harma.train_step import (NonFiniteError, StepTotals, compile_forward, forward_loss, make_optimizer,
                              param_groups, set_matmul_precision)

__all__ = ["NonFiniteError", "param_groups", "seed_everything", "train"]

ReportFn = Callable[[dict[str, Any]], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_lambda(total_steps: int, warmup_frac: float, schedule: str) -> Callable[[int], float]:
    warmup = int(total_steps * warmup_frac)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return max(0.0, 1 - progress)

    return factor


@dataclass
class TrainState:
    epoch: int = 0                      # last finished epoch
    best_epoch: int = 0
    best_val: dict | None = None
    best_test: dict | None = None
    history: list | None = None


def _loader(train_set, cfg: RunConfig, world: int, rank: int, pin_memory: bool
            ) -> tuple[DataLoader, DistributedSampler | None, torch.Generator]:
    generator = torch.Generator().manual_seed(cfg.train.seed)
    sampler = None
    if world > 1:
        sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True,
                                     seed=cfg.train.seed, drop_last=True)
    workers = cfg.data.num_workers
    loader = DataLoader(train_set, batch_size=cfg.train.batch_size, shuffle=sampler is None, sampler=sampler,
                        drop_last=True, num_workers=workers, generator=generator, pin_memory=pin_memory,
                        persistent_workers=workers > 0, prefetch_factor=cfg.data.prefetch_factor if workers else None)
    if len(loader) == 0:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size}: larger than the train split "
                         f"({len(train_set)} captions over {world} process(es)); no full batch")
    return loader, sampler, generator


def _train_epoch(model, forward, loader, optimizer, scheduler, cfg: RunConfig, device, epoch: int) -> dict:
    """One epoch of steps; no host sync inside the loop except the NaN guard's read every N steps."""
    model.train()
    totals = StepTotals(epoch, device)
    pairs = 0
    progress = _progress(loader, epoch)
    for step, (images, tokens, image_ids, labels) in enumerate(progress):
        if cfg.train.max_steps_per_epoch and step >= cfg.train.max_steps_per_epoch:
            break
        images, tokens = images.to(device, non_blocking=True), tokens.to(device, non_blocking=True)
        ids, labels = image_ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        parts = forward_loss(forward, images, tokens, ids, labels, cfg, device)
        totals.add(step, parts)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()
        scheduler.step()
        pairs += len(images) * dist_utils.world_size()
        if (step + 1) % cfg.train.finite_check_every == 0:
            totals.check()
    totals.check()
    return totals.means() | {"steps": totals.steps, "pairs": pairs}


def _progress(loader, epoch: int):
    if sys.stderr.isatty() and dist_utils.is_main():
        from tqdm import tqdm
        return tqdm(loader, desc=f"epoch {epoch}", leave=False)
    return loader


def _check_same_run(out_dir: Path, cfg: RunConfig) -> None:
    """Resuming continues the run in `out_dir` only when it is the same run (RESUME_FREE_KEYS may differ)."""
    saved = out_dir / "config.yaml"
    if not (cfg.train.resume and (out_dir / "last.pt").is_file() and saved.is_file()):
        return
    conflicts = resume_conflicts(load_config(str(saved)), cfg)
    if conflicts:
        raise ConfigError(f"train.out_dir={str(out_dir)!r} holds a run with another config ({'; '.join(conflicts[:6])}"
                          f"{' ...' if len(conflicts) > 6 else ''}); use a new train.out_dir, or "
                          f"train.resume=false to start that folder over")


def _resume(out_dir: Path, model, optimizer, scheduler, cfg: RunConfig) -> TrainState:
    last = out_dir / "last.pt"
    if not (cfg.train.resume and last.is_file()):
        return TrainState(history=[])
    ckpt = load_checkpoint(last)
    load_trainable(model, ckpt["trainable"], str(last))
    if optimizer is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if dist_utils.is_main():  # the log is the checkpoint's history, whatever a stop left after it
        write_text_atomic(out_dir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in ckpt["history"]))
    return TrainState(ckpt["epoch"], ckpt["best_epoch"], ckpt["best_val"], ckpt["best_test"], ckpt["history"])


def _save(out_dir: Path, model, optimizer, scheduler, state: TrainState, improved: bool) -> None:
    trainable = trainable_state(model)
    save_atomic({"trainable": trainable, "optimizer": optimizer.state_dict() if optimizer else None,
                 "scheduler": scheduler.state_dict() if scheduler else None, "epoch": state.epoch,
                 "best_epoch": state.best_epoch, "best_val": state.best_val, "best_test": state.best_test,
                 "history": state.history, "rng": {"torch": torch.get_rng_state()}}, out_dir / "last.pt")
    if improved:
        save_atomic({"trainable": trainable, "epoch": state.epoch}, out_dir / "best.pt")


def _log_line(out_dir: Path, record: dict) -> None:
    with open(out_dir / "log.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _check_finite_objective(val: dict[str, float], key: str, epoch: int) -> None:
    """A NaN or infinite objective cannot rank the epoch: the run stops, naming it (never retried)."""
    if not math.isfinite(val[key]):
        raise NonFiniteError(f"val {key} is {val[key]} at epoch {epoch}: the model's embeddings are not finite")


def _peak_memory(device: torch.device) -> dict[str, int | None]:
    """Peak resident memory of this process, and peak allocated GPU memory on CUDA (None otherwise)."""
    gpu = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    try:
        import resource
        rss = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except ImportError:  # pragma: no cover - non-POSIX
        rss = None
    return {"peak_rss_bytes": rss, "peak_gpu_bytes": gpu}


def train(cfg: RunConfig, report: ReportFn | None = None, report_on_all_ranks: bool = False,
          replay: bool = False) -> dict[str, Any]:
    """Train (or, for a frozen model, evaluate) and return a summary of the best-val epoch.

    `report(record)` is called once per epoch on rank 0 (on every rank with `report_on_all_ranks`, as Ray
    Train needs); the record holds this epoch's val/test metrics, the best-val epoch's val/test metrics so
    far, mean losses, lr, epoch seconds, images/s, parameter counts and peak memory.  With `replay`, a resumed
    run first reports again every epoch its checkpoint holds (a study driver that died before writing an
    epoch's report gets it back, and a run whose checkpoint already holds every epoch still reports)."""
    started = time.time()
    device = dist_utils.use_device(cfg.train.device)
    set_matmul_precision(device, cfg.train.tf32)
    distributed = dist_utils.init_from_env(device)
    world, rank = dist_utils.world_size(), dist_utils.rank()
    seed_everything(cfg.train.seed)
    out_dir = Path(cfg.train.out_dir)
    _check_same_run(out_dir, cfg)
    if rank == 0:
        make_private_dirs(out_dir)
        remove_debris(out_dir)              # temporary files of a write killed with an earlier run
        save_config(cfg, out_dir / "config.yaml")

    from harma.data import build_datasets

    model = build_model(cfg).to(device)
    data = build_datasets(cfg.data, tokenizer_for(cfg))
    if cfg.loss.w_affil > 0 and data.n_classes == 0:
        raise ConfigError(f"loss.w_affil={cfg.loss.w_affil}: the affiliation loss needs scene labels, but the train "
                         f"annotations ({cfg.data.train_json or cfg.data.image_root}) have no `label` field")
    has_adapters = any(isinstance(m, ADAPTER_TYPES) for m in model.modules())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())

    optimizer = scheduler = loader = sampler = generator = None
    epochs = cfg.train.epochs if has_adapters else 1
    forward = model
    if has_adapters:
        loader, sampler, generator = _loader(data.train, cfg, world, rank, pin_memory=device.type == "cuda")
        steps_per_epoch = len(loader) if not cfg.train.max_steps_per_epoch else min(
            len(loader), cfg.train.max_steps_per_epoch)
        optimizer = make_optimizer(model, cfg, device)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(steps_per_epoch * cfg.train.epochs, cfg.optim.warmup, cfg.optim.schedule))
        if distributed:
            forward = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        forward = compile_forward(forward, cfg.train)
    state = _resume(out_dir, model, optimizer, scheduler, cfg)
    if replay and report is not None and (rank == 0 or report_on_all_ranks):
        for record in state.history:
            report(record)

    for epoch in range(state.epoch + 1, epochs + 1):
        t0 = time.time()
        if has_adapters:
            # Every random draw of an epoch (shuffle, augmentation) depends only on (seed, epoch), so a
            # resumed run replays exactly what an uninterrupted one would have done.
            seed_everything(cfg.train.seed + epoch)
            generator.manual_seed(cfg.train.seed + epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
            train_stats = _train_epoch(model, forward, loader, optimizer, scheduler, cfg, device, epoch)
        else:
            train_stats = {"steps": 0, "pairs": 0}
        train_seconds = time.time() - t0
        val = evaluate_split(model, data.val, cfg, device)
        test = evaluate_split(model, data.test, cfg, device)
        key, sign = cfg.train.objective, (1.0 if cfg.train.objective_mode == "max" else -1.0)
        _check_finite_objective(val, key, epoch)
        improved = state.best_val is None or sign * val[key] > sign * state.best_val[key]
        if improved:
            state.best_epoch, state.best_val, state.best_test = epoch, val, test
        state.epoch = epoch
        record = {"epoch": epoch, "val": val, "test": test,
                  "train": {k: v for k, v in train_stats.items() if k.startswith("loss")},
                  "lr": optimizer.param_groups[0]["lr"] if optimizer else 0.0,
                  "epoch_seconds": time.time() - t0, "train_seconds": train_seconds,
                  "images_per_s": train_stats["pairs"] / train_seconds if train_seconds > 0 else 0.0,
                  "best_epoch": state.best_epoch, "best_val": state.best_val, "best_test": state.best_test,
                  "trainable_params": n_trainable, "total_params": n_total,
                  **_peak_memory(device)}
        state.history.append(record)
        # Checkpoint first, then the log line, then the report: whoever receives the report (Ray Tune, which may
        # stop the trial on it) finds the epoch's weights on disk already.  A stop before the report loses
        # nothing: a resumed run with `replay` reports every epoch its checkpoint holds again.
        if rank == 0:
            _save(out_dir, model, optimizer, scheduler, state, improved)
            _log_line(out_dir, record)
        dist_utils.barrier()
        if report is not None and (rank == 0 or report_on_all_ranks):
            report(record)
        dist_utils.barrier()

    return {"best_epoch": state.best_epoch, "best_val": state.best_val, "test_at_best_val": state.best_test,
            "epochs_run": state.epoch, "trainable_params": n_trainable, "total_params": n_total,
            "wall_seconds": time.time() - started, **_peak_memory(device),
            "world_size": world, "out_dir": str(out_dir), "history": state.history}
