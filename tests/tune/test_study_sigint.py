"""Ctrl-C (SIGINT) or SIGTERM to a running `harma study run`: Ray Tune stops the study, and harma says that
trials are missing, points to `harma study resume NAME` and exits 130 (143 for SIGTERM); the lock is released
and the resume finishes the study with every artifact matching its row."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest

from harma_subprocess import assert_verified, read_trials, run_harma, start_harma, tiny_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

STUDY = tiny_study("stopme", "ablation", 30, """
max_concurrent: 1
seeds: [1, 2, 3]
scheduler: {type: none}
arms:
  harma: {}
""")


@pytest.mark.parametrize("signum, code, name", [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_stop_signal_exits_with_its_code_and_points_to_resume(scratch, signum, code, name):
    (scratch / "studies" / "stopme.yaml").write_text(STUDY)
    driver = start_harma(["study", "run", "studies/stopme.yaml"], scratch, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    epochs = scratch / "results" / "epochs"
    deadline = time.time() + 300
    while not (epochs.is_dir() and any(epochs.rglob("*.parquet"))):
        assert driver.poll() is None, driver.communicate()[1][-3000:]
        assert time.time() < deadline, "no epoch was reported in 300 s"
        time.sleep(0.5)
    driver.send_signal(signum)
    try:
        out, err = driver.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        driver.kill()
        raise
    assert driver.returncode == code, out[-2000:] + err[-4000:]
    lines = [line for line in err.splitlines() if line.startswith("harma: ")]
    assert len(lines) == 1 and name in lines[0] and "harma study resume stopme" in lines[0], err[-3000:]
    assert "Tuner.restore" not in err and "Traceback" not in err
    trials = read_trials(scratch)
    assert (trials["status"] == "COMPLETE").sum() < 3
    assert not (scratch / "results" / "locks" / "stopme.lock").exists()
    if signum == signal.SIGTERM:
        resumed = run_harma(["study", "resume", "stopme"], scratch)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
        assert (read_trials(scratch)["status"] == "COMPLETE").sum() == 3
        assert_verified(scratch, "stopme")
