"""Time and memory of `harma` error paths against `harma --version`: each command runs N times in a fresh
process in a scratch folder (a study file whose study already has results, nothing else), and the median wall
time and peak RSS (GNU time's `%M`, /usr/bin/time) are printed as a Markdown table (benchmarks/RESULTS.md
records them).

    PYTHONPATH=$PWD python benchmarks/bench_error_paths.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIME = "/usr/bin/time"
COMMANDS = [["--version"], ["results"], ["results", "show", "nosuch"], ["report", "nosuch"],
            ["study", "status", "nosuch"], ["study", "run", "missing.yaml"], ["study", "run", "studies/tiny.yaml"]]
STUDY = """name: tiny
kind: ablation
base: {config: synthetic-tiny, set: {train.epochs: 1}}
resources: {gpus_per_trial: 0, cpus_per_worker: 1}
storage: results
seeds: [1]
arms: {harma: {}}
"""


def scratch() -> Path:
    from harma.results.schema import StudyColumns
    from harma.results.store import ResultsStore

    cwd = Path(tempfile.mkdtemp(prefix="harma-bench-errors-"))
    (cwd / "studies").mkdir()
    (cwd / "studies" / "tiny.yaml").write_text(STUDY)
    ResultsStore(cwd / "results").write_trial(
        {"study": "tiny", "trial_id": "harma-s1", "kind": "ablation", "status": "COMPLETE", "seed": 1,
         "val_r_mean": 10.0, "started_at": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), "params": {}},
        StudyColumns("tiny", {"train.seed": "int", "train.epochs": "int"}))
    return cwd


def once(args: list[str], cwd: Path) -> tuple[float, int, int]:
    """(seconds, peak RSS in MB, exit code) of one `harma ARGS` process, measured by GNU time (`%M`: a process
    forked from this one would otherwise count this one's memory too)."""
    start = time.perf_counter()
    done = subprocess.run([TIME, "-f", "%M", sys.executable, "-m", "harma.cli", *args], cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    return seconds, int(done.stderr.strip().splitlines()[-1]) // 1024, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    cwd = scratch()
    print("| command | exit | median s | peak RSS MB |\n|---|---|---|---|")
    for args in COMMANDS:
        runs = [once(args, cwd) for _ in range(repeats)]
        seconds = statistics.median(r[0] for r in runs)
        print(f"| `harma {' '.join(args)}` | {runs[0][2]} | {seconds:.2f} | {max(r[1] for r in runs)} |")


if __name__ == "__main__":
    main()
