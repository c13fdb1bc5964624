"""The one way harma writes a file atomically: readers see the old file or the whole new one, never a part.

The bytes go to a temporary file in the same folder (`.<name>.<random>.tmp`, hidden from dataset readers),
which is flushed and fsynced, then renamed over the final name with os.replace, and the folder is fsynced so
the rename survives a crash; on any error the temporary file is removed and the error propagates.  A full
disk, a read-only file system, a permission or quota refusal, or a file where a folder should be (ENOSPC,
EROFS, EACCES, EPERM, EDQUOT, ENOTDIR) becomes a `WriteError` naming the file, which the CLI reports as one
line.  Used for configs, checkpoints and results files alike.  What harma creates is private: files 0600 and
folders 0700, narrowed further by the user's umask, never widened (`make_private_dirs`, `create_private_file`;
mkstemp makes the temporary file 0600, so a replaced file is 0600 again).  Folders that exist, and a file that
`create_private_file` finds, keep their modes.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
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
    make_private_dirs(path.parent)
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


def make_private_dirs(folder: str | os.PathLike) -> None:
    """Create `folder` and its missing parents with mode 0700 & ~umask; folders that exist are left alone."""
    folder = Path(folder)
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for each in reversed(missing):
        try:
            os.mkdir(each, PRIVATE_DIR_MODE)
        except FileExistsError:
            if not each.is_dir():  # a file in the way: the same error os.makedirs would give
                raise


def create_private_file(path: str | os.PathLike) -> None:
    """Create an empty `path` with mode 0600 & ~umask (its missing folders 0700) unless it exists already."""
    path = Path(path)
    make_private_dirs(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass


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
