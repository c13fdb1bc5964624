"""Aggregate train-step throughput of 1, 2, 4 … processes sharing one GPU, as packed trials
(`resources.gpus_per_trial: 1/N`) share it, each inside its share the way a trial runs.

For each count N it starts N `bench_gpu_step.py` processes at once with one row (default `bf16:off`), each on
the same device and inside `harma.tune.packing.gpu_share(1/N)`, the helper a single-worker trial trains in
(`harma.tune.trial._train_in_process`): its GPU memory is capped at 1/N of the GPU, and an out-of-memory inside
that share is the trial's GpuShareError line.  They build their models and warm up, meet at a file barrier,
then time the same number of steps.  Aggregate pairs/s = Σ over processes of batch / median step time; the
table also shows the slowest process, the aggregate over one process's rate and the largest peak memory
against the share's cap.  Each count's row is printed as soon as it is measured.  Run from the repo root:
`python benchmarks/bench_gpu_pack.py [--counts 1,2,4] [--row bf16:off]` (`--device cpu --arch tiny`: dry run).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from gpu_verdict import emit, run  # noqa: E402

STEP = str(Path(__file__).with_name("bench_gpu_step.py"))
GIB = 1024 ** 3


def start_pack(n: int, args, folder: Path) -> list[tuple[subprocess.Popen, Path, Path]]:
    barrier = folder / f"barrier-{n}"
    barrier.mkdir()
    common = ["--device", args.device, "--arch", args.arch, "--batch", str(args.batch), "--steps", str(args.steps),
              "--warmup", str(args.warmup), "--rows", args.row, "--barrier", str(barrier), "--procs", str(n),
              "--gpu-share", f"{1 / n:.6g}", "--no-flops"]
    started = []
    for i in range(n):
        out, log = folder / f"pack-{n}-{i}.json", folder / f"pack-{n}-{i}.log"
        with open(log, "w") as fh:
            proc = subprocess.Popen([sys.executable, STEP, *common, "--json", str(out)], stdout=fh,
                                    stderr=subprocess.STDOUT)
        started.append((proc, out, log))
    return started


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def run_pack(n: int, args, folder: Path) -> list[dict]:
    """Start n step benchmarks together; their rows (one each).  A failed process fails the pack, in one line."""
    started = start_pack(n, args, folder)
    deadline = time.time() + args.timeout
    try:
        for i, (proc, _, log) in enumerate(started):
            code = proc.wait(timeout=max(1.0, deadline - time.time()))
            if code != 0:
                raise RuntimeError(f"pack of {n}: process {i} exited {code}: {last_line(log)}")
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"pack of {n}: not done within {args.timeout:g} s") from None
    finally:
        for proc, _, _ in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [json.loads(out.read_text())[0] for _, out, _ in started]


def print_header(args) -> None:
    emit(f"{args.arch}, batch {args.batch}, {args.row}, {args.device}: N processes on one device, each inside a "
         f"1/N GPU share (harma.tune.packing, as packed trials), median of {args.steps} steps each after "
         f"{args.warmup} warm-up, timed together")
    emit()
    emit("| processes | aggregate pairs / s | slowest process pairs / s | aggregate / one process | "
         "largest peak memory / share cap |")
    emit("|---:|---:|---:|---:|---:|")


def print_row(n: int, rows: list[dict], single: float) -> None:
    total = sum(r["pairs_per_s"] for r in rows)
    peak = max(r["peak_gpu_bytes"] for r in rows) / GIB
    gpu = rows[0]["gpu_total_bytes"]
    cap = f"{gpu / n / GIB:.1f} GiB" if gpu else "n/a"
    emit(f"| {n} | {total:,.0f} | {min(r['pairs_per_s'] for r in rows):,.0f} | {total / single:.2f}x | "
         f"{peak:.2f} / {cap} |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,2,4")
    parser.add_argument("--row", default="bf16:off", help="precision:compile of every process")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--batch", type=int, default=214)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per pack")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    print_header(args)
    single = None
    with tempfile.TemporaryDirectory(prefix="harma-pack-") as tmp:
        for n in counts:
            rows = run_pack(n, args, Path(tmp))
            single = single or sum(r["pairs_per_s"] for r in rows) / n
            print_row(n, rows, single)
    return 0


if __name__ == "__main__":
    run("bench_gpu_pack", main)
