"""What makes a training step fast without changing what it computes: the optimizer, the step's forward and loss,
and a loss guard that never stops the host.

`make_optimizer` is AdamW on the trainer's parameter groups, built from `HarmaModel.adapter_params()` (what
trains), the fused kernel on CUDA (same update, one launch).  `forward_loss` runs a forward (the model, or its
compiled call from `harma.compiled.FastCall`; every train batch is full, so its shapes are static) under
`harma.runtime.precision_context` and the loss on the gathered fp32 embeddings.  `StepTotals` sums each loss
part on the device and remembers there the first step whose loss was not finite; the host reads it every
`train.finite_check_every` steps and at epoch end, so a NaN still stops the run naming its epoch and step, without
a `.item()` per step.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch
from torch import nn

from harma.errors import NonFiniteError
from harma import distributed as dist_utils
from harma.config import RunConfig
from harma.epoch_record import LOSS, loss_key
from harma.losses import harma_loss
from harma.runtime import precision_context

if TYPE_CHECKING:
    from harma.model.build import HarmaModel


def param_groups(params: Mapping[str, nn.Parameter], weight_decay: float) -> list[dict]:
    """Weight decay on every named non-bias tensor (gates and temperature too), none on biases (`*bias`)."""
    decay, no_decay = [], []
    for name, p in params.items():
        (no_decay if name.endswith("bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: "HarmaModel", cfg: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW(lr, betas, eps) on param_groups(model.adapter_params()); fused on CUDA."""
    o = cfg.optim
    return torch.optim.AdamW(param_groups(model.adapter_params(), o.weight_decay), lr=o.lr,
                             betas=(o.beta1, o.beta2), eps=o.eps, fused=device.type == "cuda" or None)


def forward_loss(forward: Callable[..., Any], images: torch.Tensor, tokens: torch.Tensor, ids: torch.Tensor,
                 labels: torch.Tensor | None, cfg: RunConfig, device: torch.device) -> dict[str, torch.Tensor]:
    """harma_loss parts on the global batch: forward under the precision context, fp32 embeddings gathered."""
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
        new_bad = (self.first_bad < 0) & ~torch.isfinite(values[self.names.index(LOSS)])
        self.first_bad = torch.where(new_bad, step, self.first_bad)
        self.bad_values = torch.where(new_bad, values, self.bad_values)
        self.steps += 1

    def check(self) -> None:
        """One host read; raises NonFiniteError naming epoch, step, loss and its parts."""
        step = int(self.first_bad)
        if step < 0:
            return
        parts = dict(zip(self.names, self.bad_values.tolist()))
        raise NonFiniteError(f"epoch {self.epoch} step {step}: loss is {parts[LOSS]} ({parts})")

    def means(self) -> dict[str, float]:
        """{loss_key(part): mean over the steps added} for every part: `loss`, `loss_contr`, ..."""
        if self.sums is None:
            return {}
        means = (self.sums / max(self.steps, 1)).tolist()
        return {loss_key(k): v for k, v in zip(self.names, means)}
