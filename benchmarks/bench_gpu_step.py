"""Train-step throughput and MFU of the HarMA-injected CLIP for each precision and compile mode, the trainer's
own step: `harma.train_step.forward_loss` (forward under the precision context, harma_loss on fp32 embeddings),
backward, the trainer's AdamW (fused on CUDA), with `train.compile` applied as the trainer applies it.

The header and then each row (`--rows bf16:off,bf16:reduce-overhead,...`, in that order) are printed and flushed
as soon as they are known, so a run stopped by a time limit keeps every row it measured.  Each row builds a
fresh random-init model, runs `--warmup` steps (the compile time shown is what torch's compile callbacks count
in them, `harma.compiled.compile_seconds`: tracing, Inductor, the backward, CUDA-graph recording; a fallback to
eager shows in the last column), then times `--steps` steps (CUDA-synchronised) and reports the median.  FLOPs
per step come from torch's FlopCounterMode over one extra step of the first eager row (FLOPs do not depend on
precision or compilation);
MFU = FLOPs/s over `--peak-tflops` (default by GPU name: 790 TFLOP/s dense bf16 for H100/H200; the same
yardstick for every row).  `--json FILE` writes the rows; `--barrier DIR --procs N` makes N concurrent
processes (benchmarks/bench_gpu_pack.py) start timing together; `--gpu-share S` runs the rows inside a packed
trial's share of the GPU (harma.tune.packing, as a trial with `resources.gpus_per_trial: S`).  `--device cpu
--arch tiny`: the dry run.  Run from the repo root: `python benchmarks/bench_gpu_step.py [--batch 214]`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from gpu_verdict import emit, run  # noqa: E402

PEAK_TFLOPS = {"H200": 790.0, "H100": 790.0, "A100": 312.0, "L40S": 362.0}


@dataclass
class Row:
    precision: str
    compile: str
    median_s: float
    min_s: float
    max_s: float
    pairs_per_s: float
    compile_s: float
    compile_notes: str | None
    flops: float | None
    gflop_per_pair: float | None
    mfu: float | None
    peak_gpu_bytes: int
    gpu_total_bytes: int


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_config(arch: str, device: torch.device, precision: str, compile_mode: str):
    from harma.config import RunConfig, apply_overrides, load_config

    train = {"train.device": str(device), "train.precision": precision, "train.compile": compile_mode}
    if arch == "tiny":
        return apply_overrides(load_config("synthetic-tiny"), train)
    return apply_overrides(RunConfig(), {"model.arch": arch, **train})


def make_batch(cfg, batch: int, device: torch.device):
    from harma.model.build import arch_config, tokenizer_for

    size = arch_config(cfg.model.arch)["vision_cfg"]["image_size"]
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=gen)
    words = ("playground", "parking lot", "church", "stadium", "farmland", "port", "school", "bridge")
    tokens = tokenizer_for(cfg)([f"many buildings and green trees are around a {words[i % len(words)]} near a "
                                 f"river" for i in range(batch)])
    ids = torch.arange(batch) // 2
    return images.to(device), tokens.to(device), ids.to(device)


def step_function(cfg, device: torch.device, batch):
    """(step(), model) for a freshly built model: the trainer's forward_loss and backward through its FastCall
    (compiled as `train.compile` resolves on the device, eager after a failed compile), then the optimizer step."""
    from harma.compiled import TRAIN_FORWARD, FastCall, resolve_mode
    from harma.model.build import build_model
    from harma.train_step import forward_loss, make_optimizer

    torch.manual_seed(0)
    model = build_model(cfg).to(device).train()
    optimizer = make_optimizer(model, cfg, device)
    fast = FastCall(TRAIN_FORWARD, model, resolve_mode(cfg.train.compile, device))
    images, tokens, ids = batch

    def forward_backward(forward) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = forward_loss(forward, images, tokens, ids, None, cfg, device)["loss"]
        loss.backward()
        return loss

    def step() -> torch.Tensor:
        loss = fast.run(forward_backward)
        optimizer.step()
        return loss

    return step, model


def count_flops(step) -> float:
    """FLOPs of one (eager) step, which it also runs."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def wait_for_peers(barrier: str | None, procs: int) -> None:
    """Mark this process ready in `barrier` and wait (at most 300 s) until `procs` processes are."""
    if not barrier:
        return
    Path(barrier, f"ready.{os.getpid()}").touch()
    deadline = time.time() + 300
    while len(list(Path(barrier).glob("ready.*"))) < procs:
        if time.time() > deadline:
            raise TimeoutError(f"--barrier {barrier}: only {len(list(Path(barrier).glob('ready.*')))} of {procs} "
                               f"processes became ready")
        time.sleep(0.01)


def timed(step, n: int, device: torch.device) -> tuple[list[float], torch.Tensor | None]:
    """Wall time of each of n synchronised steps, and the last loss."""
    times, loss = [], None
    for _ in range(n):
        start = time.perf_counter()
        loss = step()
        sync(device)
        times.append(time.perf_counter() - start)
    return times, loss


def measure(precision: str, compile_mode: str, args, device: torch.device, peak: float | None,
            flops: float | None = None) -> Row:
    """One row; counts the FLOPs itself on an eager row when `flops` is not known yet."""
    from harma.compiled import compile_seconds, notes, resolve_mode

    cfg = run_config(args.arch, device, precision, compile_mode)
    batch = make_batch(cfg, args.batch, device)
    if compile_mode != "off":
        torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    step, _ = step_function(cfg, device, batch)
    if flops is None and compile_mode == "off" and not getattr(args, "no_flops", True):
        flops = count_flops(step)
    compiling = compile_seconds()
    timed(step, args.warmup, device)
    compile_s = compile_seconds() - compiling
    wait_for_peers(args.barrier, args.procs)
    times, loss = timed(step, args.steps, device)
    if loss is not None and not torch.isfinite(loss):
        raise FloatingPointError(f"{precision}/{compile_mode}: loss became {float(loss)}")
    med = statistics.median(times)
    cuda = device.type == "cuda"
    peak_bytes = torch.cuda.max_memory_allocated(device) if cuda else 0
    total = torch.cuda.get_device_properties(device).total_memory if cuda else 0
    return Row(precision, compile_mode, med, min(times), max(times), args.batch / med, compile_s,
               notes(resolve_mode(compile_mode, device)), flops, flops / args.batch / 1e9 if flops else None,
               flops / med / (peak * 1e12) if (peak and flops) else None, peak_bytes, total)


def device_for(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"CUDA is not available (torch {torch.__version__}, CUDA build "
                           f"{torch.version.cuda or 'none'}); use --device cpu --arch tiny for the dry run. "
                           f"Nothing was measured.")
    from harma.runtime import use_device

    return use_device(name)


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def print_header(args, device: torch.device, peak: float | None) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    share = f", inside a {args.gpu_share:g} GPU share" if args.gpu_share < 1 else ""
    emit(f"{name}, torch {torch.__version__} (CUDA {torch.version.cuda}), {args.arch} random init + HarMA "
         f"adapters, batch {args.batch}, median of {args.steps} steps after {args.warmup} warm-up{share}; MFU "
         f"against {f'{peak:g} TFLOP/s' if peak else 'n/a'}")
    emit()
    emit("| precision | compile | s / step (median) | min / max | pairs / s | GFLOP / pair | MFU | compile s | "
         "peak GPU memory | compile notes |")
    emit("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")


def print_row(r: Row) -> None:
    mfu = f"{100 * r.mfu:.1f} %" if r.mfu is not None else "n/a"
    gflop = f"{r.gflop_per_pair:.3g}" if r.gflop_per_pair is not None else "n/a"
    emit(f"| {r.precision} | {r.compile} | {r.median_s:.4f} | {r.min_s:.4f} / {r.max_s:.4f} | "
         f"{r.pairs_per_s:,.0f} | {gflop} | {mfu} | {r.compile_s:.0f} | {r.peak_gpu_bytes / 1024**3:.2f} GiB | "
         f"{r.compile_notes or ''} |")


def measure_rows(args, device: torch.device, peak: float | None, pairs: list[tuple[str, str]]) -> list[Row]:
    """Every row in order, each printed (and the JSON rewritten) as soon as it is measured."""
    rows: list[Row] = []
    flops = None
    for precision, mode in pairs:
        row = measure(precision, mode, args, device, peak, flops)
        flops = flops or row.flops
        rows.append(row)
        print_row(row)
        if args.json:
            Path(args.json).write_text(json.dumps([asdict(r) for r in rows]))
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (dry run)")
    parser.add_argument("--arch", default="ViT-B-32", help="open_clip arch, or tiny (dry run)")
    parser.add_argument("--batch", type=int, default=214)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rows", default="bf16:off,bf16:reduce-overhead,fp32:off",
                        help="comma-separated precision:compile pairs, measured and printed in this order")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count (no MFU)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    parser.add_argument("--barrier", default=None, help="folder where concurrent processes meet before timing")
    parser.add_argument("--procs", type=int, default=1, help="processes meeting at --barrier")
    parser.add_argument("--gpu-share", type=float, default=1.0, help="run inside this share of the GPU")
    args = parser.parse_args(argv)
    args.pairs = [tuple(item.split(":")) for item in args.rows.split(",")]
    if any(len(p) != 2 for p in args.pairs):
        parser.error(f"--rows {args.rows!r}: expected precision:compile pairs, e.g. bf16:off,bf16:default")
    if args.barrier and len(args.pairs) != 1:
        parser.error("--barrier times one row: give exactly one --rows pair")
    return args


def main(argv: list[str] | None = None) -> int:
    from harma.tune.packing import gpu_share

    args = parse_args(argv)
    device = device_for(args.device)
    if device.type == "cuda":
        from harma.runtime import set_matmul_precision
        set_matmul_precision(device, True)
    peak = peak_tflops(device, args.peak_tflops)
    print_header(args, device, peak)
    with gpu_share(args.gpu_share, args.device):
        measure_rows(args, device, peak, args.pairs)
    return 0


if __name__ == "__main__":
    run("bench_gpu_step", main)
