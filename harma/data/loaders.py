"""DataLoader helpers the trainer and the evaluation share: `close_loader` ends a loader's persistent workers at
once (a reused trial process starts the next trial right after, and an exception's traceback could otherwise
keep the loader, and its worker processes, alive)."""
from __future__ import annotations

from typing import Any


def close_loader(loader: Any) -> None:
    """Stop a torch DataLoader's persistent worker processes, if it started any, and drop its iterator."""
    iterator = getattr(loader, "_iterator", None)
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    if iterator is not None:
        loader._iterator = None
