"""What makes a training step fast without changing what it computes: the optimizer, precision, compilation and
a loss guard that never stops the host.

`make_optimizer` is AdamW on the trainer's parameter groups, the fused kernel on CUDA (same update, one launch).
`precision_context` is bf16 autocast when `train.precision=bf16`, on any device.  `set_matmul_precision` turns
TF32 on for fp32 CUDA matmuls when `train.tf32` (CPU is never touched).  `compile_forward` wraps the training
forward in `torch.compile` for `train.compile` other than `off` (static shapes: every train batch is full).
`StepTotals` sums each loss part on the device and remembers there the first step whose loss was not finite;
the host reads it every `train.finite_check_every` steps and at epoch end, so a NaN still stops the run naming
its epoch and step, without a `.item()` per step.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from harma.errors import NonFiniteError
from harma import distributed as dist_utils
from harma.config import RunConfig, TrainConfig
from harma.losses import harma_loss


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on every trainable non-bias tensor (gates and temperature too), none on biases."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW(lr, betas, eps, weight decay by group); fused on CUDA."""
    o = cfg.optim
    return torch.optim.AdamW(param_groups(model, o.weight_decay), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps,
                             fused=device.type == "cuda" or None)


def precision_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for `precision == "bf16"`, otherwise nothing."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def set_matmul_precision(device: torch.device, tf32: bool) -> None:
    """TF32 (or IEEE fp32) for CUDA matmuls and convolutions; nothing on CPU."""
    if device.type != "cuda":
        return
    mode = "tf32" if tf32 else "ieee"
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
    else:  # torch < 2.9
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def compile_forward(module: nn.Module, train_cfg: TrainConfig) -> nn.Module:
    """`module` itself for compile=off, else torch.compile(module, mode, dynamic=False)."""
    if train_cfg.compile == "off":
        return module
    return torch.compile(module, mode=train_cfg.compile, dynamic=False)


def begin_step(train_cfg: TrainConfig) -> None:
    """Tell CUDA-graph trees a new training iteration starts (compile=reduce-overhead)."""
    if train_cfg.compile == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()


def forward_loss(forward: nn.Module, images: torch.Tensor, tokens: torch.Tensor, ids: torch.Tensor,
                 labels: torch.Tensor | None, cfg: RunConfig, device: torch.device) -> dict[str, torch.Tensor]:
    """harma_loss parts on the global batch: forward under the precision context, fp32 embeddings gathered."""
    begin_step(cfg.train)
    with precision_context(device, cfg.train.precision):
        img, txt, temp = forward(images, tokens)
    img, txt = dist_utils.gather_with_grad(img.float()), dist_utils.gather_with_grad(txt.float())
    ids = dist_utils.gather_no_grad(ids)
    labels = dist_utils.gather_no_grad(labels) if labels is not None else None
    return harma_loss(img, txt, temp.float(), ids, labels, cfg.loss)


class StepTotals:
    """Σ of every loss part over an epoch's steps and the first non-finite step, both kept on the device."""

    def __init__(self, epoch: int, device: torch.device):
        self.epoch, self.device = epoch, device
        self.names: list[str] = []
        self.sums = self.bad_values = None
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.steps = 0

    def add(self, step: int, parts: dict[str, torch.Tensor]) -> None:
        """sums += parts; first_bad = step where the loss is first not finite (no host sync)."""
        values = torch.stack([v.detach().float() for v in parts.values()])
        if self.sums is None:
            self.names = list(parts)
            self.sums, self.bad_values = torch.zeros_like(values), torch.zeros_like(values)
        self.sums += values
        new_bad = (self.first_bad < 0) & ~torch.isfinite(values[self.names.index("loss")])
        self.first_bad = torch.where(new_bad, step, self.first_bad)
        self.bad_values = torch.where(new_bad, values, self.bad_values)
        self.steps += 1

    def check(self) -> None:
        """One host read; raises NonFiniteError naming epoch, step, loss and its parts."""
        step = int(self.first_bad)
        if step < 0:
            return
        parts = dict(zip(self.names, self.bad_values.tolist()))
        raise NonFiniteError(f"epoch {self.epoch} step {step}: loss is {parts['loss']} ({parts})")

    def means(self) -> dict[str, float]:
        """{"loss": mean, "loss_<part>": mean, ...} over the steps added."""
        if self.sums is None:
            return {}
        means = (self.sums / max(self.steps, 1)).tolist()
        return {("loss" if k == "loss" else f"loss_{k}"): v for k, v in zip(self.names, means)}
