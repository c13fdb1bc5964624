"""What a trial packed with others may use of its machine.  GPU memory: a single-worker trial with
`resources.gpus_per_trial` < 1 caps its CUDA caching allocator at that fraction of the GPU
(`torch.cuda.set_per_process_memory_fraction`) before it trains, so trials packed on one GPU cannot starve each
other, and an out-of-memory inside the share becomes one `GpuShareError` (never retried: the same config fails
the same way) naming the share and the key to change; a whole GPU or a CPU trial is left alone.  CPUs: unless
the study sets `data.num_workers`, a trial starts `resources.cpus_per_worker - 1` loader workers (the worker's
own process takes one CPU).  torch is imported only when a share applies: the study driver imports this module.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from harma.errors import GpuShareError

GIB = 1024 ** 3
CAUSE_CHARS = 200   # of torch's own out-of-memory message, kept at the end of the one line


def loader_workers(cpus_per_worker: float) -> int:
    """DataLoader workers that fit a trial worker's CPUs beside the process itself: whole CPUs - 1, at least 0."""
    return max(0, int(cpus_per_worker) - 1)


def applies(share: float) -> bool:
    """A fractional GPU: more than none, less than one whole GPU."""
    return 0 < share < 1


def share_message(share: float, device, error: BaseException) -> str:
    """One line: what ran out, how much the share allowed, what to change."""
    import torch

    props = torch.cuda.get_device_properties(device)
    total = props.total_memory / GIB
    text = str(error).strip()
    cause = text.splitlines()[0][:CAUSE_CHARS] if text else type(error).__name__
    return (f"out of GPU memory inside this trial's share: resources.gpus_per_trial={share:g} caps it at "
            f"{share * total:.1f} of {total:.1f} GiB on {props.name} ({device}); lower train.batch_size, or raise "
            f"resources.gpus_per_trial so fewer trials share a GPU (torch: {cause})")


@contextlib.contextmanager
def gpu_share(share: float, device_name: str = "cuda") -> Iterator[None]:
    """Inside: for 0 < share < 1 on a CUDA device (`device_name` as `train.device` names it), this process's
    allocator capped at the share and an out-of-memory raised as one GpuShareError; otherwise nothing changes."""
    if not applies(share):
        yield
        return
    import torch

    from harma.runtime import resolve_device

    device = resolve_device(device_name)
    if device.type != "cuda":
        yield
        return
    torch.cuda.set_per_process_memory_fraction(share, device)
    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        raise GpuShareError(share_message(share, device, exc)) from exc
