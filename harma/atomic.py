"""The one way harma writes a file atomically: readers see the old file or the whole new one, never a part.

The bytes go to a temporary file in the same folder (`.<name>.<random>.tmp`, hidden from dataset readers),
which is flushed and fsynced, then renamed over the final name with os.replace, and the folder is fsynced so
the rename survives a crash; on any error the temporary file is removed.  Only a missing path or a regular
file is ever replaced: a device (/dev/null, /dev/full), FIFO, socket, symbolic link or folder there is
refused.  Every OSError of a write (a full disk, a read-only file system, a permission or quota refusal, a
file where a folder should be) becomes a `WriteError` naming the file asked for, never the temporary name,
which the CLI reports as one line.  `find_debris` / `remove_debris` find the temporary files of writes that
were killed before their rename.  Used for configs, checkpoints and results files alike.  What harma creates is private: files 0600 and
folders 0700, narrowed further by the user's umask, never widened (`make_private_dirs`, `create_private_file`;
mkstemp makes the temporary file 0600, so a replaced file is 0600 again).  Folders that exist, and a file that
`create_private_file` finds, keep their modes.  Files meant for others to read (report pages) are written
`shared=True`: 0666 and new folders 0777, narrowed by the umask, as open() and mkdir() would make them.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from harma.errors import WriteError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SHARED_DIR_MODE = 0o777
SHARED_FILE_MODE = 0o666


def as_write_error(exc: OSError, path: str | os.PathLike) -> WriteError:
    """`exc` as a WriteError naming `path` (the file asked for, never a temporary name)."""
    if isinstance(exc, WriteError):
        return exc
    return WriteError(exc.errno, exc.strerror, os.fspath(path))


KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def check_replaceable(path: str | os.PathLike) -> None:
    """WriteError naming `path` unless it is missing or a regular file: a write never replaces a device (such
    as /dev/null or /dev/full), a FIFO, a socket, a symbolic link or a folder."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError:
        return                      # a file in the way of its folder: the write reports that
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in KINDS if test(mode)), "not a regular file")
    raise WriteError(errno.EINVAL, f"it is {kind}; harma replaces only regular files", os.fspath(path))


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None], shared: bool = False) -> None:
    """Call `write(fh)` on a temporary file next to `path`, then move it over `path`; `shared`: the file 0666
    and its new folders 0777 (less the umask) instead of 0600 and 0700."""
    path = Path(path)
    check_replaceable(path)
    try:
        _write_atomic(path, write, shared)
    except OSError as exc:
        error = as_write_error(exc, path)
        if error is exc:
            raise
        raise error from None


def _write_atomic(path: Path, write: Callable[[BinaryIO], None], shared: bool = False) -> None:
    make_dirs(path.parent, SHARED_DIR_MODE if shared else PRIVATE_DIR_MODE)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if shared:
                os.fchmod(fh.fileno(), SHARED_FILE_MODE & ~current_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def current_umask() -> int:
    """The process umask, read from /proc where it can be (setting it to read it races with other threads;
    the fallback sets 0077 for that moment, so a file another thread creates then is only more private)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o077)
    os.umask(old)
    return old


def make_private_dirs(folder: str | os.PathLike) -> None:
    """Create `folder` and its missing parents with mode 0700 & ~umask; folders that exist are left alone."""
    make_dirs(folder, PRIVATE_DIR_MODE)


def make_dirs(folder: str | os.PathLike, mode: int) -> None:
    """Create `folder` and its missing parents with `mode & ~umask`; folders that exist are left alone."""
    folder = Path(folder)
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for each in reversed(missing):
        try:
            os.mkdir(each, mode)
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


DEBRIS = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")    # what `_write_atomic` names its temporary files


def find_debris(folder: str | os.PathLike) -> list[Path]:
    """Temporary files of writes that were killed before their rename, anywhere under `folder`, sorted."""
    found = []
    for parent, _, names in os.walk(folder):
        found += [Path(parent) / n for n in names if DEBRIS.match(n)]
    return sorted(found)


def remove_debris(folder: str | os.PathLike) -> list[Path]:
    """Remove `find_debris(folder)`; only safe while no write under `folder` is in flight (its one writer
    holds the folder, e.g. under the study lock); return what was removed."""
    removed = []
    for path in find_debris(folder):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def write_bytes_atomic(path: str | os.PathLike, data: bytes, shared: bool = False) -> None:
    write_atomic(path, lambda fh: fh.write(data), shared)


def write_text_atomic(path: str | os.PathLike, text: str, shared: bool = False) -> None:
    write_atomic(path, lambda fh: fh.write(text.encode()), shared)


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder, so the renames in it survive a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
