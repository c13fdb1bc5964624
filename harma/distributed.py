"""Rank and world size from the environment and an all-gather whose backward is correct (the device a process
trains on is `harma.runtime`'s).

`gather_with_grad` concatenates every rank's tensor in rank order; every rank passes the same shape (a train
step's full batches), so no size is exchanged or read on the host (`gather_uneven_with_grad` allows uneven
sizes, for work outside the step).  Its backward all-reduces (sums) the incoming gradient and keeps this
rank's slice: every rank computes the same global loss, so summing the ranks' contributions and then letting
DDP average parameter gradients over ranks yields exactly the gradient of the single-process loss on the
concatenated batch.  Everything is a no-op when world size is 1.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def env_local_rank() -> int | None:
    """LOCAL_RANK as torchrun and Ray Train set it, or None outside such a launcher."""
    value = os.environ.get("LOCAL_RANK")
    return int(value) if value not in (None, "") else None


class _GatherWithGrad(torch.autograd.Function):
    """Equal sizes on every rank (a training step: `drop_last` makes every batch full), so each rank's slice
    is known from the shapes alone: one all_gather forward, one all_reduce backward, no host read."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        ctx.size = tensor.shape[0]
        ctx.start = rank() * ctx.size
        parts = [torch.empty_like(tensor, memory_format=torch.contiguous_format) for _ in range(world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start: ctx.start + ctx.size]


class _GatherUnevenWithGrad(_GatherWithGrad):
    """Any size per rank: the sizes are exchanged and read on the host (a device sync, so not for a step), every
    part is padded to the largest (gloo gathers equal sizes only) and cut back after the gather."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        ctx.size = tensor.shape[0]
        sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world_size())]
        dist.all_gather(sizes, torch.tensor([ctx.size], device=tensor.device))
        sizes = torch.cat(sizes).tolist()
        ctx.start = sum(sizes[: rank()])
        padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
        padded[: ctx.size] = tensor
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes)], dim=0)


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' tensors concatenated along dim 0, differentiable; every rank must pass the same shape (a
    training step's full batches), which keeps the step free of host reads.  Uneven: `gather_uneven_with_grad`."""
    if world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


def gather_uneven_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Like `gather_with_grad` with a different size on each rank allowed, at the cost of a size exchange and
    a host read per call: for work outside the training step."""
    if world_size() == 1:
        return tensor
    return _GatherUnevenWithGrad.apply(tensor)


def gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' tensors concatenated along dim 0 (ids, labels, eval embeddings); equal sizes required."""
    if world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def init_from_env(device: torch.device) -> bool:
    """Join the process group torchrun (or Ray Train) set up in the environment; True when distributed."""
    if env_world_size() <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return True


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
