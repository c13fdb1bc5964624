"""Where and how a process computes: its device, its random seeds and its numeric precision.

`resolve_device` is the one owner of `train.device`: `auto` (CUDA when present, else CPU), `cpu`, `cuda` (the
launcher's local rank under torchrun / Ray Train, else the current device, which is the GPU Ray gave a trial
through CUDA_VISIBLE_DEVICES) or `cuda:N`; a CUDA request on a machine without one is one ConfigError.
`start(train_cfg)` is how training, `harma eval` and every study trial begin: the device made current, then
TF32 set as `train.tf32` says.  TF32 is set through the API that every reader of it uses
(`torch.set_float32_matmul_precision`, `cudnn.allow_tf32`), never torch's newer `fp32_precision` attributes,
after which `torch.get_float32_matmul_precision()` raises (and Inductor's GEMM autotuning calls it).
`precision_context` is bf16 autocast when `train.precision=bf16`, on any device.  `reset_process_state` clears
what a run leaves in its process (peak-memory marks) for a reused trial process.
"""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from harma.config import TrainConfig
from harma.distributed import env_local_rank
from harma.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`train.device` -> a torch.device with an index for CUDA; ConfigError when CUDA is asked for and absent."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r}: CUDA is not available on this machine (torch "
                          f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}); use auto or cpu")
    count = torch.cuda.device_count()
    index = torch.device(name).index
    if index is None:
        local = env_local_rank()
        index = local if local is not None else torch.cuda.current_device()
    if not 0 <= index < count:
        raise ConfigError(f"train.device={name!r}: CUDA device {index} requested (LOCAL_RANK="
                          f"{os.environ.get('LOCAL_RANK', 'unset')}) but {count} are visible "
                          f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
    return torch.device("cuda", index)


def use_device(name: str) -> torch.device:
    """Resolve `train.device` and make a CUDA device this process's current one."""
    device = resolve_device(name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def set_matmul_precision(device: torch.device, tf32: bool) -> None:
    """CUDA fp32 matmuls "high" (TF32) if tf32 else "highest" (IEEE); cudnn.allow_tf32 = tf32; CPU untouched."""
    if device.type != "cuda":
        return
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = tf32


def start(train_cfg: TrainConfig) -> torch.device:
    """The device of `train.device`, made current, with TF32 as `train.tf32` says: how every run begins."""
    device = use_device(train_cfg.device)
    set_matmul_precision(device, train_cfg.tf32)
    return device


def reset_process_state(device: torch.device) -> None:
    """What one run leaves in its process and the next must not see (a Ray Tune actor reused for the next
    trial): the peak-memory marks (CUDA's allocator statistics; the resident-set high-water mark, through
    /proc/self/clear_refs where Linux allows it).  Seeds are set by each run itself; compiled graphs are
    harma.compiled's (`begin_run`)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")            # 5: reset the peak RSS (VmHWM, ru_maxrss) to the current RSS
    except OSError:
        pass


def seed_everything(seed: int) -> None:
    """Python's, NumPy's (seed mod 2^32) and torch's global generators from one seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def precision_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for `precision == "bf16"`, otherwise nothing."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
