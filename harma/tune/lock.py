"""One driver per study: a lock file in the study's results storage, with stale-lock takeover.

`hold_study_lock(root, name)` creates `<root>/locks/<name>.lock` holding the driver's host, boot id, pid,
process start time and a random token, and keeps its modification time fresh from a heartbeat thread while
the study runs.  A second `harma study run|resume` of the same study finds the file and is refused with one
line naming the holder.  A lock is stale, and taken over, when its holder is provably gone: on this host (same
host name and boot id) the pid is dead or now belongs to a younger process; on another host its heartbeat is
older than `STALE_AFTER_S`.  Takeover happens under a short-lived guard file created the same exclusive way,
after checking the lock still is the stale one, so of several drivers that saw it only one replaces it.

Guarantees: on a local disk and on NFSv3+ (O_EXCL create and rename are atomic on the server) two drivers
never both hold the lock.  On an object store (s3://, gs://) there is no atomic create-if-absent through
pyarrow: the lock is written, read back after a pause and kept only if it still carries this driver's token,
which stops drivers started seconds apart but not two started in the same instant.  A driver on another host
that is alive but cut off from the storage for longer than `STALE_AFTER_S` can lose its lock.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow.fs as pafs

from harma.errors import StudyLockedError
from harma.atomic import make_private_dirs
from harma.results import fsio
from harma.errors import StudyError

HEARTBEAT_S = 20.0
STALE_AFTER_S = 120.0
OBJECT_STORE_SETTLE_S = 2.0
TAKEOVER_GUARD_S = 30.0
ACQUIRE_S = 60.0


@dataclass(frozen=True)
class Holder:
    host: str
    boot_id: str
    pid: int
    pid_started: int            # the pid's start time in clock ticks since boot (tells a reused pid apart)
    started_at: float           # wall clock when the lock was taken
    token: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        return f"pid {self.pid} on host {self.host} since {when}"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_started(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def this_driver() -> Holder:
    pid = os.getpid()
    return Holder(socket.gethostname(), _boot_id(), pid, _pid_started(pid) or 0, time.time(), uuid.uuid4().hex)


def holder_is_gone(holder: Holder, heartbeat_age_s: float, me: Holder) -> bool:
    """Whether the lock's holder is provably gone (see the module docstring)."""
    if holder.host == me.host and holder.boot_id == me.boot_id and me.boot_id:
        return _pid_started(holder.pid) != holder.pid_started
    if holder.host == me.host and holder.boot_id != me.boot_id and me.boot_id:
        return True                                   # this host rebooted since the lock was taken
    return heartbeat_age_s > STALE_AFTER_S


def _parse(text: str, path: str) -> Holder:
    try:
        return Holder(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise StudyError(f"{path}: not a harma study lock ({exc}); delete it if no driver runs this "
                         "study") from None


class StudyLock:
    """The lock of one study; use as a context manager (takes it on enter, releases it on exit)."""

    def __init__(self, root: str, name: str) -> None:
        self.fs, base = fsio.resolve_root(root)
        self.name, self.path = name, f"{base}/locks/{name}.lock"
        self.me = this_driver()
        self.stale: Holder | None = None          # the gone holder this driver took the lock over from
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- reading ------------------------------------------------------------------------------------
    def _read(self) -> tuple[Holder, float] | None:
        """(holder, heartbeat age in seconds) of the current lock file, None when there is none."""
        info = self.fs.get_file_info(self.path)
        if info.type == pafs.FileType.NotFound:
            return None
        try:
            with self.fs.open_input_stream(self.path) as fh:
                holder = _parse(fh.read().decode(errors="replace"), self.path)
        except FileNotFoundError:                     # released between the two calls
            return None
        age = time.time() - info.mtime.timestamp() if info.mtime is not None else float("inf")
        return holder, age

    # -- taking -------------------------------------------------------------------------------------
    def _content(self) -> bytes:
        return json.dumps(asdict(self.me)).encode()

    def _create_local(self, path: str) -> bool:
        """Write the whole file under a private name, then hard-link it to `path`: the link fails if `path`
        exists (atomic on local disks and NFS), and a reader never sees a half-written lock."""
        folder = Path(path).parent
        make_private_dirs(folder)
        tmp = folder / f".{Path(path).name}.{self.me.token}.tmp"
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._content())
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def _create_remote(self, path: str) -> bool:
        if self.fs.get_file_info(path).type != pafs.FileType.NotFound:
            return False
        fsio.write_bytes(self.fs, path, self._content())
        time.sleep(OBJECT_STORE_SETTLE_S)
        with self.fs.open_input_stream(path) as fh:
            return _parse(fh.read().decode(errors="replace"), path).token == self.me.token

    def _create(self, path: str) -> bool:
        """Create `path` holding this driver, only if it does not exist."""
        return self._create_local(path) if fsio.is_local(self.fs) else self._create_remote(path)

    def _take_over(self, stale: Holder) -> bool:
        """Replace the stale lock with ours, under a short-lived `.takeover` guard so that of several drivers
        that saw the same stale lock only one replaces it (and none replaces a lock a faster taker just made)."""
        guard = self.path + ".takeover"
        if not self._create(guard):
            info = self.fs.get_file_info(guard)
            if info.mtime is not None and time.time() - info.mtime.timestamp() > TAKEOVER_GUARD_S:
                fsio.delete_file(self.fs, guard)      # left by a taker that died mid-way
            return False
        try:
            found = self._read()
            if found is None or found[0].token != stale.token:
                return False
            fsio.write_bytes(self.fs, self.path, self._content())   # atomic replace
            return True
        finally:
            fsio.delete_file(self.fs, guard)

    def acquire(self) -> Holder | None:
        """Take the lock; returns the stale holder that was taken over (None if the lock was free)."""
        deadline = time.time() + ACQUIRE_S
        while time.time() < deadline:
            if self._create(self.path):
                self._start_heartbeat()
                return None
            found = self._read()
            if found is None:
                continue
            holder, age = found
            if not holder_is_gone(holder, age, self.me):
                raise StudyLockedError(f"study {self.name} is being run by another driver, {holder.describe()} "
                                       f"(lock {self.path}); wait for it to finish, or stop it")
            if self._take_over(holder):
                self.stale = holder
                self._start_heartbeat()
                return holder
            time.sleep(0.05)
        raise StudyLockedError(f"study {self.name}: could not take the lock {self.path} within {ACQUIRE_S:g} s; "
                               "other drivers keep taking it")

    # -- keeping and releasing ----------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        self._beat = threading.Thread(target=self._heartbeat, name=f"harma-lock-{self.name}", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if fsio.is_local(self.fs):
                    os.utime(self.path)
                else:
                    fsio.write_bytes(self.fs, self.path, self._content())
            except OSError:
                pass                                   # storage hiccup: the next beat tries again

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        found = self._read()
        if found is not None and found[0].token == self.me.token:
            fsio.delete_file(self.fs, self.path)

    def __enter__(self) -> "StudyLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
