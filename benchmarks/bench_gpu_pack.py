"""Aggregate train-step throughput of 1, 2, 4 … processes sharing one GPU, as packed trials
(`resources.gpus_per_trial: 0.25`) share it.

For each count N it starts N `bench_gpu_step.py` processes at once with one row (default `bf16:off`), each on
the same device; they build their models and warm up, meet at a file barrier, then time the same number of
steps.  Aggregate pairs/s = Σ over processes of batch / median step time; the table also shows the slowest
process and the aggregate over one process's rate.  Run from the repo root:
`python benchmarks/bench_gpu_pack.py [--counts 1,2,4] [--row bf16:off]` (`--device cpu --arch tiny`: dry run).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

STEP = str(Path(__file__).with_name("bench_gpu_step.py"))


def run_pack(n: int, args, folder: Path) -> list[dict]:
    """Start n step benchmarks together; their rows (one each)."""
    barrier = folder / f"barrier-{n}"
    barrier.mkdir()
    common = ["--device", args.device, "--arch", args.arch, "--batch", str(args.batch), "--steps", str(args.steps),
              "--warmup", str(args.warmup), "--rows", args.row, "--barrier", str(barrier), "--procs", str(n)]
    procs = [subprocess.Popen([sys.executable, STEP, *common, "--json", str(folder / f"pack-{n}-{i}.json")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(n)]
    for i, proc in enumerate(procs):
        _, err = proc.communicate(timeout=args.timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"pack of {n}: process {i} exited {proc.returncode}: {err[-2000:]}")
    return [json.loads((folder / f"pack-{n}-{i}.json").read_text())[0] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,2,4")
    parser.add_argument("--row", default="bf16:off", help="precision:compile of every process")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--batch", type=int, default=214)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per pack")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory(prefix="harma-pack-") as tmp:
        results = {n: run_pack(n, args, Path(tmp)) for n in counts}
    single = sum(r["pairs_per_s"] for r in results[counts[0]]) / counts[0]
    print(f"{args.arch}, batch {args.batch}, {args.row}, {args.device}: N processes on one device, "
          f"median of {args.steps} steps each after {args.warmup} warm-up, timed together\n")
    print("| processes | aggregate pairs / s | slowest process pairs / s | aggregate / one process |")
    print("|---:|---:|---:|---:|")
    for n, rows in results.items():
        total = sum(r["pairs_per_s"] for r in rows)
        print(f"| {n} | {total:,.0f} | {min(r['pairs_per_s'] for r in rows):,.0f} | {total / single:.2f}x |")


if __name__ == "__main__":
    main()
