"""The `harma data` subcommands (wired into `harma/cli.py` by `add_data_commands`).

`harma data synth OUT --images N [--seed S] [--image-size P]` writes a synthetic data set into OUT (or
reuses the identical one already there) and prints the paths to put in a config's `data.*` keys.
`harma data check --config NAME [--set ...]` checks the data set a config names (harma.data.check): a table on
stdout, then each problem (the first 20); exit 1 when there is any.
"""
from __future__ import annotations

import argparse

from harma.data.synthetic import ensure_synthetic_dataset


def _synth(args: argparse.Namespace) -> int:
    paths = ensure_synthetic_dataset(args.out, args.images, seed=args.seed, image_size=args.image_size)
    for name in ("image_root", "train_json", "val_json", "test_json"):
        print(f"{name}: {getattr(paths, name)}")
    return 0


def _provenance(image_root: str) -> str | None:
    """What `harma fetch data` recorded about this image root (its manifest), if it made it."""
    from harma.data.manifest import read_manifest

    manifest = read_manifest(image_root)
    if manifest is None:
        return None
    request = manifest.get("request", {})
    return (f"fetched by `harma fetch data {manifest['set']}`: split {request.get('split')}, source "
            f"{request.get('source')}")


def _check(args: argparse.Namespace) -> int:
    from harma.config import load_config
    from harma.data.check import check_data
    from harma.data.check_table import report_lines

    cfg = load_config(args.config, args.overrides)
    report = check_data(cfg.data, decode=not args.no_decode, progress=True)
    provenance = _provenance(report.image_root) if cfg.data.image_root else None
    for line in report_lines(report, provenance):
        print(line)
    return 1 if report.problems else 0


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `data synth ...` and `data check ...`; each leaf parser sets `func(args) -> int` (the exit code)."""
    data = subparsers.add_parser("data", help="data set tools")
    sub = data.add_subparsers(dest="data_command", required=True)
    synth = sub.add_parser("synth", help="write a synthetic data set in the authors' annotation format")
    synth.add_argument("out", metavar="OUT", help="folder to write (created; reused if it holds the same set)")
    synth.add_argument("--images", type=int, required=True, metavar="N", help="number of images (>= 6)")
    synth.add_argument("--seed", type=int, default=0, metavar="S")
    synth.add_argument("--image-size", type=int, default=64, metavar="P", help="image side in pixels")
    synth.set_defaults(func=_synth)
    check = sub.add_parser("check", help="check a config's data set: files, counts, captions, split overlap")
    check.add_argument("--config", required=True, help="shipped config name or YAML file")
    check.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE", dest="overrides",
                       help="dotted overrides, e.g. data.image_root=PATH")
    check.add_argument("--no-decode", action="store_true", help="skip decoding (existence and counts only)")
    check.set_defaults(func=_check)
    return data
