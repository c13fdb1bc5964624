"""A study's report folder is replaced whole, never written into: `replace_report_folder(target, fill)` makes a
hidden folder beside the target (`.NAME.<random>.tmp-report`), lets `fill` write every file into it, then
renames the old folder aside (`.NAME.<random>.old-report`), renames the new one into place and deletes the
old one.  An error anywhere before the swap (a full disk, a read-only folder) removes the new folder and leaves
the old report as it was; readers never see a half-written report.  Only a missing path, an empty folder or a
folder holding what a report holds (`index.html`, CSV files, temporary files of interrupted harma writes) is
ever replaced: a regular file, a device or a folder with anything else in it is refused with a `WriteError`
naming it, so `--out ~` cannot remove a home folder.  A symbolic link to a folder is followed: its target is
replaced and the link kept.  New folders are 0777 less the umask (report pages are for others to read); a
replaced folder keeps its mode.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable

from harma.atomic import DEBRIS, SHARED_DIR_MODE, as_write_error, current_umask, fsync_dir, make_dirs
from harma.errors import WriteError

NEW_SUFFIX = ".tmp-report"
OLD_SUFFIX = ".old-report"
REPORT_FILES = "index.html and CSV files"


def report_target(out_dir: str | os.PathLike) -> Path:
    """The folder to replace for `out_dir`, absolute: itself, or the folder a symbolic link there points to."""
    out = Path(out_dir)
    return out.resolve() if out.is_symlink() else Path(os.path.abspath(out))


def _belongs_to_a_report(entry: os.DirEntry) -> bool:
    name = entry.name
    regular = entry.is_file(follow_symlinks=False)
    return regular and (name == "index.html" or name.endswith(".csv") or bool(DEBRIS.match(name)))


def check_report_folder(target: str | os.PathLike) -> None:
    """WriteError naming `target` unless it is missing, or a folder that holds only what a report holds."""
    try:
        mode = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return                      # missing, or a file in the way of its folder: making the folder reports that
    if not stat.S_ISDIR(mode):
        kind = "a regular file" if stat.S_ISREG(mode) else "not a folder"
        raise WriteError(errno.EINVAL, f"it is {kind}; a report is a folder", os.fspath(target))
    with os.scandir(target) as entries:
        foreign = sorted(e.name for e in entries if not _belongs_to_a_report(e))
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise WriteError(errno.EINVAL, f"it is a folder holding {shown}, not only a report's {REPORT_FILES}; "
                                       "harma replaces only a report folder", os.fspath(target))


def replace_report_folder(target: str | os.PathLike, fill: Callable[[Path], None]) -> None:
    """Build the report folder `target` anew: `fill(folder)` writes its files into a hidden folder beside it,
    which then replaces `target` whole.  Any error leaves `target` as it was and no temporary folder."""
    target = Path(target)
    check_report_folder(target)
    try:
        make_dirs(target.parent, SHARED_DIR_MODE)    # a file in the way, a read-only folder: named as target
        new = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=NEW_SUFFIX))
    except OSError as exc:
        raise as_write_error(exc, target) from None
    try:
        fill(new)
        os.chmod(new, _folder_mode(target))
        _swap(new, target)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise


def _folder_mode(target: Path) -> int:
    """The mode of the folder being replaced, or what mkdir would give a new one."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return SHARED_DIR_MODE & ~current_umask()


def _swap(new: Path, target: Path) -> None:
    """Rename `new` to `target`; an existing `target` is renamed aside first, put back if that fails, and
    deleted after."""
    try:
        if not os.path.lexists(target):
            os.rename(new, target)
            fsync_dir(target.parent)
            return
        aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=OLD_SUFFIX))
        try:
            os.rename(target, aside)    # onto the empty folder mkdtemp reserved
        except BaseException:
            os.rmdir(aside)
            raise
        try:
            os.rename(new, target)
        except BaseException:
            os.rename(aside, target)
            raise
        fsync_dir(target.parent)
    except OSError as exc:
        raise as_write_error(exc, target) from None
    shutil.rmtree(aside, ignore_errors=True)

