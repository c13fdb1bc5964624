"""DataLoader helpers the trainer and the evaluation share: `worker_options` are the worker settings of every
loader of a run (`data.num_workers` resolved, pinned memory on CUDA, persistent workers, prefetch), and
`close_loader` ends a loader's persistent workers at once (a reused trial process starts the next trial right after, and an exception's traceback could otherwise
keep the loader, and its worker processes, alive)."""
from __future__ import annotations

from typing import Any

from harma.config import loader_workers


def worker_options(data: Any, device: Any) -> dict[str, Any]:
    """DataLoader keyword arguments for `data` (a DataConfig) on `device`: workers, pinning, persistence, prefetch."""
    workers = loader_workers(data)
    return {"num_workers": workers, "pin_memory": device.type == "cuda", "persistent_workers": workers > 0,
            "prefetch_factor": data.prefetch_factor if workers else None}


def close_loader(loader: Any) -> None:
    """Stop a torch DataLoader's persistent worker processes, if it started any, and drop its iterator."""
    iterator = getattr(loader, "_iterator", None)
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    if iterator is not None:
        loader._iterator = None
