"""The one way harma writes a file atomically: readers see the old file or the whole new one, never a part.

The bytes go to a temporary file in the same folder (`.<name>.<random>.tmp`, hidden from dataset readers),
which is flushed and fsynced, then renamed over the final name with os.replace, and the folder is fsynced so
the rename survives a crash; on any error the temporary file is removed and the error propagates.  A full
disk, a read-only file system, a permission or quota refusal, or a file where a folder should be (ENOSPC,
EROFS, EACCES, EPERM, EDQUOT, ENOTDIR) becomes a `WriteError` naming the file, which the CLI reports as one
line.  Used for configs, checkpoints and results files alike.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of its folder path is a file, not a folder",
}


class WriteError(OSError):
    """A file cannot be written (disk full, read-only, no permission); the message names the file.

    Built like an OSError, `WriteError(errno, strerror, filename)`, so it pickles across processes."""

    def __str__(self) -> str:
        reason = REASONS.get(self.errno, self.strerror or "cannot write")
        return f"cannot write {self.filename}: {reason} ({errno.errorcode.get(self.errno, self.errno)})"


def as_write_error(exc: OSError, path: str | os.PathLike) -> OSError:
    """`exc` as a WriteError naming `path` when it is a full disk, read-only or permission error, else `exc`."""
    if isinstance(exc, WriteError) or exc.errno not in REASONS:
        return exc
    return WriteError(exc.errno, exc.strerror, os.fspath(path))


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call `write(fh)` on a temporary file next to `path`, then move it over `path`."""
    path = Path(path)
    try:
        _write_atomic(path, write)
    except OSError as exc:
        error = as_write_error(exc, path)
        if error is exc:
            raise
        raise error from None


def _write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_atomic(path, lambda fh: fh.write(text.encode()))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
