"""Ctrl-C (SIGINT) to a running `harma study run`: Ray Tune stops the study, and harma says that trials are
missing, points to `harma study resume NAME` and exits 130."""
from __future__ import annotations

import signal
import subprocess
import time

import pandas as pd
import pytest

from harma_subprocess import start_harma, tiny_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

STUDY = tiny_study("stopme", "ablation", 30, """
max_concurrent: 1
seeds: [1, 2, 3]
scheduler: {type: none}
arms:
  harma: {}
""")


def test_sigint_exits_130_and_points_to_resume(scratch):
    (scratch / "studies" / "stopme.yaml").write_text(STUDY)
    driver = start_harma(["study", "run", "studies/stopme.yaml"], scratch, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    epochs = scratch / "results" / "epochs"
    deadline = time.time() + 300
    while not (epochs.is_dir() and any(epochs.rglob("*.parquet"))):
        assert driver.poll() is None, driver.communicate()[1][-3000:]
        assert time.time() < deadline, "no epoch was reported in 300 s"
        time.sleep(0.5)
    driver.send_signal(signal.SIGINT)
    try:
        out, err = driver.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        driver.kill()
        raise
    assert driver.returncode == 130, out[-2000:] + err[-4000:]
    lines = [line for line in err.splitlines() if line.startswith("harma: ")]
    assert len(lines) == 1 and "SIGINT" in lines[0] and "harma study resume stopme" in lines[0], err[-3000:]
    assert "Tuner.restore" not in err
    trials = pd.read_parquet(scratch / "results" / "trials")
    assert (trials["status"] == "COMPLETE").sum() < 3
