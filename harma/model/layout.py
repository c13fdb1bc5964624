"""Self-attention inputs in the memory layout that lets PyTorch run each input projection as one GEMM.

A batch-first `nn.MultiheadAttention` (open_clip 3's blocks) transposes its [N, L, C] input to [L, N, C]
before projecting it.  That view is not contiguous; when the projection weight is frozen and the input needs a
gradient (every frozen block below an adapter), PyTorch's matmul then runs the projection as a batched matmul
against the weight expanded N times instead of one GEMM (measured on CPU: about a third of a ViT-B-32
training step).  `seq_first_self_attention` registers a forward pre-hook on those attentions that hands them
the same values with sequence-first memory, x' = xᵀ.contiguous()ᵀ, so the transpose inside is contiguous.
Values, parameters and state-dict keys are unchanged; trainable attentions (the adapters') fold on their own.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _seq_first_hook(module: nn.MultiheadAttention, args: tuple, kwargs: dict[str, Any]):
    """x' = x.transpose(0, 1).contiguous().transpose(0, 1) for self-attention (q is k is v) while grad records."""
    if not torch.is_grad_enabled() or module.in_proj_weight is None or module.in_proj_weight.requires_grad:
        return None
    if len(args) < 3 or not (args[0] is args[1] is args[2]):
        return None
    x = args[0]
    if x.dim() != 3 or x.transpose(0, 1).is_contiguous():
        return None
    x = x.transpose(0, 1).contiguous().transpose(0, 1)
    return (x, x, x, *args[3:]), kwargs


def seq_first_self_attention(model: nn.Module) -> int:
    """Register the layout hook on every batch-first MultiheadAttention in `model` (it acts only while the
    projection is frozen, so freezing may come before or after); returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention) and module.batch_first:
            module.register_forward_pre_hook(_seq_first_hook, with_kwargs=True)
            count += 1
    return count
