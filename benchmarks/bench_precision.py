"""Does bf16 autocast keep HarMA's results?  Best val mR of fp32 and bf16 training on the synthetic set, over
seeds, on one device.

For each seed in `--seeds` it trains the `synthetic-tiny` config (or `--config`) for `--epochs` epochs with
`train.precision=fp32` and `=bf16` (autocast on `--device`, CPU or CUDA), evaluates in the same precision, and
prints a table of best val mR per seed, the bf16 − fp32 difference, its mean and standard deviation, and the
seed-to-seed standard deviation of fp32 for scale.  Run from the repo root:
`python benchmarks/bench_precision.py [--device cpu] [--seeds 0,1,2]`.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="synthetic-tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--images", type=int, default=240)
    args = parser.parse_args()

    from harma.config import load_config
    from harma.train import train

    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[tuple[int, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="harma-precision-") as tmp:
        for seed in seeds:
            for precision in ("fp32", "bf16"):
                cfg = load_config(args.config, {
                    "data.image_root": str(Path(tmp) / "synth"), "data.synthetic_images": args.images,
                    "train.epochs": args.epochs, "train.seed": seed, "train.precision": precision,
                    "train.device": args.device, "train.out_dir": str(Path(tmp) / f"{seed}-{precision}")})
                results[seed, precision] = train(cfg).best_val["r_mean"]
    diffs = [results[s, "bf16"] - results[s, "fp32"] for s in seeds]
    print(f"{args.config}, {args.images} synthetic images, {args.epochs} epochs, device {args.device}\n")
    print("| seed | fp32 best val mR | bf16 best val mR | bf16 − fp32 |")
    print("|---:|---:|---:|---:|")
    for seed, diff in zip(seeds, diffs):
        print(f"| {seed} | {results[seed, 'fp32']:.2f} | {results[seed, 'bf16']:.2f} | {diff:+.2f} |")
    fp32 = [results[s, "fp32"] for s in seeds]
    spread = statistics.stdev(fp32) if len(fp32) > 1 else 0.0
    sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    print(f"\nmean difference {statistics.mean(diffs):+.2f} mR (sd {sd:.2f}); seed-to-seed sd of fp32: {spread:.2f} mR")


if __name__ == "__main__":
    main()
