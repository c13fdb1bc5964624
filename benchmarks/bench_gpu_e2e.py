"""End-to-end epoch rate of `harma.train` (data loading, augmentation, the step, evaluation excluded) against
the step-only rate of the same config, on a synthetic data set.

Writes (or reuses) a synthetic set of `--images` images at `--image-px` pixels under `--data`, trains
`--epochs` epochs with `--set` overrides on top of a ViT-B-32 default config (bf16, `train.compile=auto` as a
study trial on a GPU runs it, batch 214, 12 loader workers unless overridden), printing each epoch's row as it
ends (with the seconds torch spent compiling in it, part of its time: the first epoch's), and takes the last
epoch's `images_per_s` (pairs over the epoch's training seconds, so waiting on the loader counts).  It then
times the trainer's step alone on random tensors of the same shape (benchmarks/bench_gpu_step.py) and prints
both and their ratio.  `--arch tiny
--device cpu`: the dry run.  Any error ends it with one verdict line.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_gpu_step  # noqa: E402
from gpu_verdict import emit, run  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--image-px", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", default=None, help="synthetic set folder (default: a temporary one)")
    parser.add_argument("--set", nargs="*", default=[], dest="overrides", metavar="KEY=VALUE")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="harma-e2e-") as tmp:
        measure(args, Path(args.data or Path(tmp) / "synth"), Path(tmp) / "run")
    return 0


def e2e_config(args, device, data: Path, out: Path):
    from harma.config import apply_overrides
    from harma.data import ensure_synthetic_dataset

    paths = ensure_synthetic_dataset(data, args.images, seed=0, image_size=args.image_px)
    base = bench_gpu_step.run_config(args.arch, device, "bf16", "auto")
    cfg = apply_overrides(base, {
        "data.image_root": str(paths.image_root), "data.train_json": str(paths.train_json),
        "data.val_json": str(paths.val_json), "data.test_json": str(paths.test_json), "data.synthetic_images": 0,
        "data.num_workers": 12, "train.epochs": args.epochs, "train.out_dir": str(out), "train.resume": False,
        "train.batch_size": 214 if args.arch != "tiny" else 32})
    return apply_overrides(cfg, args.overrides)


def print_epoch(record) -> None:
    emit(f"| {record.epoch} | {record.train_seconds:.2f} | {record.images_per_s:,.0f} | {record.epoch_seconds:.2f} | "
         f"{record.compile_seconds:.1f} | {record.compile_notes or ''} |")


def measure(args, data: Path, out: Path) -> None:
    from harma.train import train

    device = bench_gpu_step.device_for(args.device)
    cfg = e2e_config(args, device, data, out)
    emit(f"{args.arch}, {device}, {cfg.train.precision}, compile {cfg.train.compile}, batch {cfg.train.batch_size}, "
         f"{cfg.data.num_workers} loader workers, {args.images} synthetic images at {args.image_px} px "
         f"(resized to {cfg.data.image_size}), {args.epochs} epochs")
    emit()
    emit("| epoch | train seconds | images / s (end to end) | epoch seconds (with eval) | of which compiling | "
         "compile notes |")
    emit("|---:|---:|---:|---:|---:|---|")
    epochs: list[dict] = []
    train(cfg, report=lambda record: (epochs.append(record), print_epoch(record)))
    e2e = epochs[-1].images_per_s
    step_args = argparse.Namespace(arch=args.arch, batch=cfg.train.batch_size, steps=10, warmup=2, barrier=None,
                                   procs=1, no_flops=True)
    row = bench_gpu_step.measure(cfg.train.precision, cfg.train.compile, step_args, device, None)
    emit()
    emit(f"step only: {row.pairs_per_s:,.0f} pairs/s; last epoch end to end / step only = {e2e / row.pairs_per_s:.2f}")


if __name__ == "__main__":
    run("bench_gpu_e2e", main)
