"""The `harma data` subcommands (wired into `harma/cli.py` by `add_data_commands`).

`harma data synth OUT --images N [--seed S] [--image-size P]` writes a synthetic data set into OUT (or
reuses the identical one already there) and prints the paths to put in a config's `data.*` keys.
"""
from __future__ import annotations

import argparse

from harma.data.synthetic import ensure_synthetic_dataset


def _synth(args: argparse.Namespace) -> int:
    paths = ensure_synthetic_dataset(args.out, args.images, seed=args.seed, image_size=args.image_size)
    for name in ("image_root", "train_json", "val_json", "test_json"):
        print(f"{name}: {getattr(paths, name)}")
    return 0


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `data synth ...`; each leaf parser sets `func(args) -> int` (the exit code)."""
    data = subparsers.add_parser("data", help="data set tools")
    sub = data.add_subparsers(dest="data_command", required=True)
    synth = sub.add_parser("synth", help="write a synthetic data set in the authors' annotation format")
    synth.add_argument("out", metavar="OUT", help="folder to write (created; reused if it holds the same set)")
    synth.add_argument("--images", type=int, required=True, metavar="N", help="number of images (>= 6)")
    synth.add_argument("--seed", type=int, default=0, metavar="S")
    synth.add_argument("--image-size", type=int, default=64, metavar="P", help="image side in pixels")
    synth.set_defaults(func=_synth)
    return data
