"""How a run's epochs advance: `Training` for a model with something to train, `FrozenPass` for one without.

`epoch_runner` asks `model.adapter_params()`.  With parameters to train it builds `Training`: the shuffled
loader (each rank its share under DDP; full batches of uint8 images, pinned on CUDA, copied without blocking and
normalised on the device), AdamW on those parameters and the warm-up-then-decay schedule stepped every iteration,
the forward wrapped in DDP when distributed and run through `harma.compiled.FastCall` (compiled as `train.compile`
resolves on the device, once per process; a step whose compile fails runs again eager); `run(epoch)` trains one
epoch.  Every random draw of an epoch (shuffle, augmentation) depends only on (seed, epoch), so a resumed run
replays exactly what an uninterrupted one would have done.  Without any (`adapter.towers=none`) it is
`FrozenPass`: one epoch that trains nothing, so the frozen model is evaluated once.  Both return `EpochStats`
and give the checkpoint their state (`{"optimizer", "scheduler"}`), which they read back on resume.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
from torch.utils.data import DataLoader, DistributedSampler

from harma import distributed as dist_utils
from harma.compiled import TRAIN_FORWARD, FastCall, resolve_mode
from harma.config import ConfigError, RunConfig
from harma.data.loaders import close_loader, worker_options
from harma.data.transforms import PixelNormalizer
from harma.epoch_record import LOSS
from harma.model.build import HarmaModel
from harma.runtime import seed_everything
from harma.train_step import StepTotals, forward_loss, make_optimizer


@dataclass(frozen=True)
class Process:
    """Where this process trains: its device, whether it is one rank of a DDP group, the world and its rank."""
    device: torch.device
    distributed: bool
    world: int
    rank: int


@dataclass(frozen=True)
class EpochStats:
    """What one epoch of steps gives: the mean of each loss term (`loss_key` names) and the pairs trained on."""
    losses: dict[str, float]
    pairs: int                      # image-text pairs over all ranks


class EpochRunner(Protocol):
    epochs: int

    def run(self, epoch: int) -> EpochStats: ...
    def close(self) -> None: ...
    def lr(self) -> float: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class FrozenPass:
    """A model with nothing to train: one epoch, no steps, lr 0, nothing to checkpoint or resume."""
    epochs = 1

    def run(self, epoch: int) -> EpochStats:
        return EpochStats({}, 0)

    def close(self) -> None:
        """No loader to stop."""

    def lr(self) -> float:
        return 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": None, "scheduler": None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


def lr_lambda(total_steps: int, warmup_frac: float, schedule: str) -> Callable[[int], float]:
    """Factor of lr at a step: (step+1)/warmup during warm-up, then linear 1-progress or cosine 0.5(1+cos(pi p))."""
    warmup = int(total_steps * warmup_frac)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return max(0.0, 1 - progress)

    return factor


def _loader(train_set, cfg: RunConfig, proc: Process) -> tuple[DataLoader, DistributedSampler | None,
                                                                  torch.Generator]:
    generator = torch.Generator().manual_seed(cfg.train.seed)
    sampler = None
    if proc.world > 1:
        sampler = DistributedSampler(train_set, num_replicas=proc.world, rank=proc.rank, shuffle=True,
                                     seed=cfg.train.seed, drop_last=True)
    loader = DataLoader(train_set, batch_size=cfg.train.batch_size, shuffle=sampler is None, sampler=sampler,
                        drop_last=True, generator=generator, **worker_options(cfg.data, proc.device))
    if len(loader) == 0:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size}: larger than the train split "
                          f"({len(train_set)} captions over {proc.world} process(es)); no full batch")
    return loader, sampler, generator


def _progress(loader, epoch: int):
    if sys.stderr.isatty() and dist_utils.is_main():
        from tqdm import tqdm
        return tqdm(loader, desc=f"epoch {epoch}", leave=False)
    return loader


class Training:
    """The loader, optimizer, schedule and (DDP-wrapped, compiled) forward of a model that trains."""

    def __init__(self, model: HarmaModel, train_set, cfg: RunConfig, proc: Process):
        self.model, self.cfg, self.device = model, cfg, proc.device
        self.epochs = cfg.train.epochs
        self.loader, self.sampler, self.generator = _loader(train_set, cfg, proc)
        cap = cfg.train.max_steps_per_epoch
        steps_per_epoch = min(len(self.loader), cap) if cap else len(self.loader)
        self.optimizer = make_optimizer(model, cfg, proc.device)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(steps_per_epoch * cfg.train.epochs, cfg.optim.warmup, cfg.optim.schedule))
        forward = model
        if proc.distributed:
            forward = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[proc.device.index] if proc.device.type == "cuda" else None)
        self.forward = FastCall(TRAIN_FORWARD, forward, resolve_mode(cfg.train.compile, proc.device))
        self.pixels = PixelNormalizer(proc.device)

    def run(self, epoch: int) -> EpochStats:
        """Reseed from (seed, epoch), then one epoch of steps."""
        seed_everything(self.cfg.train.seed + epoch)
        self.generator.manual_seed(self.cfg.train.seed + epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        return self._steps(epoch)

    def _steps(self, epoch: int) -> EpochStats:
        """One epoch of steps; no host sync inside the loop except the NaN guard's read every N steps."""
        cfg, device = self.cfg, self.device
        self.model.train()
        totals, pairs = StepTotals(epoch, device), 0
        for step, batch in enumerate(_progress(self.loader, epoch)):
            if cfg.train.max_steps_per_epoch and step >= cfg.train.max_steps_per_epoch:
                break
            images, tokens, ids, labels = (t.to(device, non_blocking=True) for t in batch)
            images = self.pixels(images)
            parts = self.forward.run(lambda call: self._forward_backward(call, images, tokens, ids, labels))
            totals.add(step, parts)
            self.optimizer.step()
            self.scheduler.step()
            pairs += len(images) * dist_utils.world_size()
            if (step + 1) % cfg.train.finite_check_every == 0:
                totals.check()
        totals.check()
        return EpochStats(totals.means(), pairs)

    def _forward_backward(self, forward, images: torch.Tensor, tokens: torch.Tensor, ids: torch.Tensor,
                          labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradients of one step from nothing (a step redone eager after a failed compile starts clean)."""
        self.optimizer.zero_grad(set_to_none=True)
        parts = forward_loss(forward, images, tokens, ids, labels, self.cfg, self.device)
        parts[LOSS].backward()
        return parts

    def close(self) -> None:
        """Stop the loader's persistent workers now (a reused trial process runs the next trial right after)."""
        close_loader(self.loader)

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def epoch_runner(model: HarmaModel, train_set, cfg: RunConfig, proc: Process) -> EpochRunner:
    """`Training` when `model.adapter_params()` has anything, else `FrozenPass`."""
    return Training(model, train_set, cfg, proc) if model.adapter_params() else FrozenPass()
