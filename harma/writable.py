"""Before a long run starts: can this process write into a folder?  One clear error now, not after an epoch.

`write_problem(path)` takes the folder, or its nearest existing ancestor when it does not exist yet (the
folders in between are created later by whoever writes there), creates and removes a small hidden file in it,
and returns what went wrong (a read-only file system, no permission, a file where a folder should be) or None.
It creates no folder and leaves no file behind.  Callers turn the answer into their own error naming their
setting (`train.out_dir`, a study's `storage`).  A full disk is not detected here, since a few bytes may still
fit: the atomic writer names the file when that happens (harma.atomic.WriteError).
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from harma.errors import WRITE_REASONS as REASONS

PROBE_PREFIX = ".harma-write-probe-"


def nearest_existing(path: str | os.PathLike) -> Path:
    """`path` (absolute) if it exists, else its closest ancestor that does."""
    p = Path(path).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _reason(exc: OSError, folder: Path) -> str:
    code = errno.errorcode.get(exc.errno, str(exc.errno))
    return f"cannot create a file in {folder}: {REASONS.get(exc.errno, exc.strerror or 'error')} ({code})"


def write_problem(path: str | os.PathLike) -> str | None:
    """None when a file can be created in `path` (or in the folder that will hold it), else why not."""
    folder = nearest_existing(path)
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=PROBE_PREFIX)
    except OSError as exc:
        return _reason(exc, folder)
    os.close(fd)
    os.unlink(probe)
    return None
