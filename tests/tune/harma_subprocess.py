"""Run the `harma` command in a subprocess with a clean Ray environment (end-to-end study tests): tiny study
files, drivers started in their own process group, the trials table as the driver left it, and the driver's
descendant processes (from /proc)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd


REPO = Path(__file__).resolve().parents[2]


def harma_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.pop("RAY_ADDRESS", None)
    return env


def run_harma(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harma.cli", *args], cwd=cwd, env=harma_env(),
                          capture_output=True, text=True, timeout=timeout)


# a 6-trial ASHA search over two float keys (the body of a tiny_study)
SEARCH_BODY = """
num_samples: 6
max_concurrent: 2
seeds: [3407]
scheduler: {type: asha, max_epochs: 3, grace_period: 1, reduction_factor: 2}
search:
  sampler: {seed: 1, n_startup_trials: 3}
  space:
    optim.lr: {type: float, low: 1.0e-4, high: 2.0e-2, log: true}
    adapter.gate_init: {type: float, low: -1.0, high: 1.0}
"""


def tiny_study(name: str, kind: str, epochs: int, body: str) -> str:
    """A study file over the 120-image synthetic set on CPU, one worker and one CPU per trial; `body` adds the
    kind's keys (search space, arms, scheduler, seeds, concurrency)."""
    return f"""
name: {name}
kind: {kind}
base:
  config: synthetic-tiny
  set: {{train.epochs: {epochs}, data.synthetic_images: 120, data.image_root: .harma/synthetic-120}}
resources: {{gpus_per_trial: 0, cpus_per_worker: 1, workers_per_trial: 1, custom: {{trial_slot: 1}}}}
storage: results
""" + body


def start_harma(args: list[str], cwd: Path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                **popen) -> subprocess.Popen:
    """`harma ARGS` in the background, leading its own process group (so a test can kill all of it)."""
    return subprocess.Popen([sys.executable, "-m", "harma.cli", *args], cwd=cwd, env=harma_env(), stdout=stdout,
                            stderr=stderr, start_new_session=True, **popen)


def read_trials(scratch: Path, study: str | None = None) -> pd.DataFrame:
    """The trials table under scratch/results (one study's folder read by pandas, or every study through the
    results root's dataset), empty before the first row is written."""
    path = scratch / "results" / "trials" / (f"study={study}" if study else "")
    if not (path.is_dir() and any(path.rglob("*.parquet"))):
        return pd.DataFrame()
    if study:
        return pd.read_parquet(path)
    from harma.results.store import ResultsStore

    return ResultsStore(scratch / "results").dataset().to_table().to_pandas()


def descendants(pid: int) -> list[int]:
    """Pids of every live descendant of `pid`, from /proc (children, grandchildren, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def verify(scratch: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    """`harma study verify NAME` in scratch (every finished trial's artifacts against its row)."""
    return run_harma(["study", "verify", name, *args], scratch)


def assert_verified(scratch: Path, name: str) -> None:
    proc = verify(scratch, name)
    assert proc.returncode == 0 and " 0 problem(s)" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
