"""Faults injected for real into running studies, outcomes checked in Parquet and Optuna.

A search driver is SIGKILLed (process group) at two moments and resumed each time, while a second driver of the
same study is refused; at the end every planned trial ran exactly once, rows finished before a kill are
byte-identical, no two trials share a config and no epoch is missing.  A single-worker trial's worker process
is SIGKILLed: with retries the trial resumes from its checkpoint in the same run; without, it is FAILED and
`harma study resume` reruns it while a NaN trial stays FAILED.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from harma_subprocess import (SEARCH_BODY, assert_verified, cmdline, descendants, read_trials, run_harma, start_harma,
                              tiny_study)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SEARCH = tiny_study("faults", "search", 3, SEARCH_BODY)

ABLATION = tiny_study("workers", "ablation", 3, """
max_concurrent: 1
seeds: [1]
scheduler: {type: none}
arms:
  first: {}
  diverges: {optim.lr: 1.0e+30}
  last: {adapter.gate_init: 0.5}
""")


def _epoch_files(scratch: Path, name: str) -> list[Path]:
    return sorted((scratch / "results" / "epochs" / f"study={name}").glob("*.parquet"))


def _start(scratch: Path, *args: str, log: str) -> subprocess.Popen:
    return start_harma(list(args), scratch, stdout=open(scratch / log, "w"), stderr=subprocess.STDOUT)


def _wait(driver: subprocess.Popen, until, what: str, timeout: float = 400) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if until():
            return
        assert driver.poll() is None, f"the driver ended before {what}"
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def _kill_group(driver: subprocess.Popen) -> None:
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(2)


def _finished_bytes(scratch: Path, name: str) -> dict[str, bytes]:
    trials = read_trials(scratch, name)
    done = trials.loc[trials["status"].isin(["COMPLETE", "PRUNED", "FAILED"]), "trial_id"] if len(trials) else []
    folder = scratch / "results" / "trials" / f"study={name}"
    return {tid: (folder / f"{tid}.parquet").read_bytes() for tid in done}


def _assert_no_missing_epochs(scratch: Path, name: str, trials: pd.DataFrame) -> None:
    epochs = pd.read_parquet(scratch / "results" / "epochs" / f"study={name}")
    val = epochs[(epochs["split"] == "val") & (epochs["metric"] == "r_mean")]
    assert not val.duplicated(["trial_id", "epoch"]).any()
    for row in trials.itertuples():
        if row.status != "FAILED":
            got = sorted(val.loc[val["trial_id"] == row.trial_id, "epoch"])
            assert got == list(range(1, int(row.stop_epoch) + 1)), (row.trial_id, got)


def test_killed_twice_with_a_second_driver_refused_then_every_trial_once(scratch):
    (scratch / "studies" / "faults.yaml").write_text(SEARCH)
    lock = scratch / "results" / "locks" / "faults.lock"
    driver = _start(scratch, "study", "run", "studies/faults.yaml", log="run1.log")
    _wait(driver, lock.exists, "the driver took its lock", 60)
    for second in (["study", "run", "studies/faults.yaml"], ["study", "resume", "studies/faults.yaml"]):
        refused = run_harma(second, scratch, timeout=60)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert f"being run by another driver, pid {driver.pid}" in refused.stderr and "faults.lock" in refused.stderr
    # moment 1: the first epoch of the first trials is written, nothing finished yet
    _wait(driver, lambda: len(_epoch_files(scratch, "faults")) >= 1, "a first epoch")
    _kill_group(driver)
    assert lock.exists()                                   # the dead driver's lock stays behind
    resumed = _start(scratch, "study", "resume", "faults", log="resume1.log")
    # moment 2: two trials finished and one still running
    _wait(resumed, lambda: len(t := read_trials(scratch, "faults")) and (t["status"] != "RUNNING").sum() >= 2
          and (t["status"] == "RUNNING").any(), "finished and running trials at once")
    _kill_group(resumed)
    assert "took over the lock of a driver that is gone" in (scratch / "resume1.log").read_text()
    before = _finished_bytes(scratch, "faults")
    final = run_harma(["study", "resume", "studies/faults.yaml"], scratch)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    trials = read_trials(scratch, "faults")
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"COMPLETE", "PRUNED"}
    after = _finished_bytes(scratch, "faults")
    assert {tid: after[tid] for tid in before} == before   # finished rows never rewritten
    params = trials[["param.optim.lr", "param.adapter.gate_init"]]
    assert not params.duplicated().any()                   # no config ran twice
    _assert_no_missing_epochs(scratch, "faults", trials)
    optuna_trials = optuna.load_study(study_name="faults",
                                      storage=f"sqlite:///{scratch}/results/optuna/faults.db").get_trials()
    assert len(optuna_trials) == 6 and all(t.state.is_finished() for t in optuna_trials)
    assert {t.user_attrs["harma_trial_id"] for t in optuna_trials} == set(trials["trial_id"])
    assert not lock.exists()
    assert_verified(scratch, "faults")


def _trial_worker(driver: subprocess.Popen) -> int | None:
    """The pid of the Ray worker process running a Tune trial, among the driver's own descendants."""
    return next((pid for pid in descendants(driver.pid) if "ImplicitFunc" in cmdline(pid)), None)


def _kill_worker_after_first_epoch(scratch: Path, driver: subprocess.Popen) -> None:
    _wait(driver, lambda: any(p.name.startswith("first-s1-e0001") for p in _epoch_files(scratch, "workers")),
          "the first trial's first epoch")
    worker = _trial_worker(driver)
    assert worker is not None, "no trial worker process found"
    os.kill(worker, signal.SIGKILL)


def test_a_killed_worker_is_retried_from_its_checkpoint(scratch):
    (scratch / "studies" / "workers.yaml").write_text(ABLATION)
    driver = _start(scratch, "study", "run", "studies/workers.yaml", log="run.log")
    _kill_worker_after_first_epoch(scratch, driver)
    assert driver.wait(timeout=600) == 0, (scratch / "run.log").read_text()[-3000:]
    log = (scratch / "run.log").read_text()
    assert "first-s1 failed" in log and "retry 1 of 2, from its checkpoint (epoch " in log
    trials = read_trials(scratch, "workers").set_index("trial_id")
    assert trials.loc["first-s1", "status"] == "COMPLETE" and trials.loc["first-s1", "stop_epoch"] == 3
    assert trials.loc["diverges-s1", "status"] == "FAILED" and "loss is nan" in trials.loc["diverges-s1", "error"]
    assert "diverges-s1 failed" not in log                   # a NaN is not retried
    assert trials.loc["diverges-s1", "error_type"] == "NonFiniteError"
    _assert_no_missing_epochs(scratch, "workers", trials.reset_index())
    assert_verified(scratch, "workers")


def test_without_retries_a_killed_trial_fails_and_resume_reruns_it_but_not_the_nan(scratch):
    (scratch / "studies" / "workers.yaml").write_text(ABLATION)
    driver = _start(scratch, "study", "run", "studies/workers.yaml", "--max-retries", "0", log="run.log")
    _kill_worker_after_first_epoch(scratch, driver)
    driver.wait(timeout=600)
    trials = read_trials(scratch, "workers").set_index("trial_id")
    assert trials.loc["first-s1", "status"] == "FAILED" and trials.loc["diverges-s1", "status"] == "FAILED"
    assert trials.loc["last-s1", "status"] == "COMPLETE"
    before = _finished_bytes(scratch, "workers")
    proc = run_harma(["study", "resume", "workers"], scratch)
    assert "retrying 1 FAILED trial(s) whose error a rerun may cure: first-s1" in proc.stdout, proc.stdout[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = read_trials(scratch, "workers").set_index("trial_id")
    assert after.loc["first-s1", "status"] == "COMPLETE" and after.loc["first-s1", "stop_epoch"] == 3
    now = _finished_bytes(scratch, "workers")
    assert now["diverges-s1"] == before["diverges-s1"] and now["last-s1"] == before["last-s1"]
    _assert_no_missing_epochs(scratch, "workers", after.reset_index())
    assert_verified(scratch, "workers")
