"""The study driver lock: a second driver is refused naming the holder; a lock whose holder is provably gone
(dead pid, reused pid, rebooted host, silent other host) is taken over; of many drivers racing, one wins."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from dataclasses import asdict, replace

import pytest

from harma.tune import lock as lock_mod
from harma.tune.lock import StudyLock, StudyLockedError, this_driver


def _plant(root, name, holder, age_s=0.0):
    path = root / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(holder)))
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


def test_a_second_driver_is_refused_naming_the_holder(tmp_path):
    with StudyLock(str(tmp_path), "s1") as held:
        assert held.stale is None
        with pytest.raises(StudyLockedError) as err:
            StudyLock(str(tmp_path), "s1").acquire()
        text = str(err.value)
        assert f"pid {os.getpid()}" in text and "s1.lock" in text and "\n" not in text
        with StudyLock(str(tmp_path), "other"):       # another study is not blocked
            pass
    assert not (tmp_path / "locks" / "s1.lock").exists()
    with StudyLock(str(tmp_path), "s1"):              # released: free again
        pass


def test_a_lock_of_a_dead_driver_on_this_host_is_taken_over(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me = this_driver()
    _plant(tmp_path, "s", replace(me, pid=gone.pid, pid_started=123))
    with StudyLock(str(tmp_path), "s") as held:
        assert held.stale is not None and held.stale.pid == gone.pid
        assert json.loads((tmp_path / "locks" / "s.lock").read_text())["token"] == held.me.token


def test_a_reused_pid_does_not_keep_a_lock(tmp_path):
    me = this_driver()   # our own pid, but the lock says it started at another time: a pid reused since
    _plant(tmp_path, "s", replace(me, pid_started=me.pid_started + 1, token="old"))
    with StudyLock(str(tmp_path), "s") as held:
        assert held.stale.token == "old"


def test_a_lock_from_before_a_reboot_is_stale(tmp_path):
    me = this_driver()
    if not me.boot_id:
        pytest.skip("no /proc boot id here")
    _plant(tmp_path, "s", replace(me, boot_id="an-earlier-boot", token="old"))
    with StudyLock(str(tmp_path), "s") as held:
        assert held.stale.token == "old"


def test_another_host_holds_while_its_heartbeat_is_fresh(tmp_path):
    other = replace(this_driver(), host="node-7", boot_id="x", pid=1, token="theirs")
    _plant(tmp_path, "s", other, age_s=lock_mod.STALE_AFTER_S / 2)
    with pytest.raises(StudyLockedError, match="host node-7"):
        StudyLock(str(tmp_path), "s").acquire()
    _plant(tmp_path, "s", other, age_s=lock_mod.STALE_AFTER_S + 5)
    with StudyLock(str(tmp_path), "s") as held:
        assert held.stale.host == "node-7"


def test_the_heartbeat_keeps_the_lock_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_mod, "HEARTBEAT_S", 0.05)
    with StudyLock(str(tmp_path), "s"):
        path = tmp_path / "locks" / "s.lock"
        os.utime(path, (time.time() - 1000, time.time() - 1000))
        time.sleep(0.5)
        assert time.time() - path.stat().st_mtime < 5


def test_a_garbage_lock_is_one_error_naming_it(tmp_path):
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "s.lock").write_text("not json")
    with pytest.raises(lock_mod.StudyError, match="s.lock: not a harma study lock"):
        StudyLock(str(tmp_path), "s").acquire()


def _race(root, barrier, results):
    barrier.wait()
    try:
        lk = StudyLock(root, "race")
        lk.acquire()
        results.put("won")
        time.sleep(1.0)
        lk.release()
    except StudyLockedError:
        results.put("refused")


def test_of_drivers_racing_for_a_stale_lock_exactly_one_wins(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _plant(tmp_path, "race", replace(this_driver(), pid=gone.pid, pid_started=1))
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert outcomes == ["refused", "refused", "refused", "won"]


def test_the_lock_creates_the_results_root_private(tmp_path, umask):
    umask(0o022)
    root = tmp_path / "new" / "results"
    with StudyLock(str(root), "s"):
        modes = {p: oct(p.stat().st_mode & 0o777) for p in (root, root / "locks", root / "locks" / "s.lock")}
    assert modes == {root: "0o700", root / "locks": "0o700", root / "locks" / "s.lock": "0o600"}
