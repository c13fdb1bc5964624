"""The `harma` command: train, eval, model info, data synth/check, fetch, study run/status/resume, results, report.

Each subcommand imports its module only when run, so `harma train` works without Ray or plotly installed.
Every harma error (`harma.errors.HarmaError`: bad config, data, weights, study or results files, a file that
cannot be written) and a missing file print one line on stderr and exit with the error's code (2); this is
the one place errors become exit codes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from harma.config import load_config
from harma.epoch_record import EpochRecord
from harma.errors import ConfigError, HarmaError
from harma.metrics import TIE_GAP_KEY


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("harma")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from harma import __version__
        return __version__


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="shipped config name (rsitmd-geo, synthetic-tiny, ...) or YAML file")
    p.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="dotted overrides, e.g. adapter.bottleneck=64 loss.gamma=1.5; repeated --set flags "
                   "accumulate (a later value for the same key wins)")


def _print_epoch(record: EpochRecord) -> None:
    """One line per epoch: val and test mR with their tie gaps, every train loss term, lr, time (and the part of it
    spent compiling, when any) and speed."""
    val, test = record.val, record.test
    losses = " ".join(f"{k}={v:.4f}" for k, v in record.train.items())
    compiling = f" ({record.compile_seconds:.1f}s compiling)" if record.compile_seconds > 0 else ""
    print(f"epoch {record.epoch:3d}  val mR {val['r_mean']:6.2f} (tie gap {val[TIE_GAP_KEY]:.2f})  "
          f"test mR {test['r_mean']:6.2f} (tie gap {test[TIE_GAP_KEY]:.2f})  {losses}  "
          f"lr={record.lr:.2e}  {record.epoch_seconds:.1f}s{compiling}  {record.images_per_s:.1f} img/s", flush=True)


def check_train_inputs(cfg) -> None:
    """What would fail a training run later, refused now: an image size the arch cannot take, a data set whose
    annotation or image files are missing or shared between splits (harma.data.check, no decoding), weights
    named but not fetched, a batch larger than each process's share of the train split, an output folder this
    process cannot write."""
    from harma import distributed
    from harma.data.check import check_data_inputs
    from harma.data.split_size import check_batch_fits
    from harma.model.build import check_image_size
    from harma.model.weights import resolve_weights
    from harma.writable import write_problem

    check_image_size(cfg)
    check_data_inputs(cfg.data)
    resolve_weights(cfg.model.weights, verify=False)
    check_batch_fits(cfg, world=distributed.env_world_size())
    problem = write_problem(cfg.train.out_dir)
    if problem:
        raise ConfigError(f"train.out_dir: expected a folder this process can write, got {cfg.train.out_dir!r} "
                          f"({problem})")


def cmd_train(args: argparse.Namespace) -> int:
    from harma.train import train

    cfg = load_config(args.config, args.overrides)
    check_train_inputs(cfg)
    summary = train(cfg, report=_print_epoch)
    from harma import distributed
    if distributed.is_main():
        print(f"best epoch {summary.best_epoch} (val mR {summary.best_val['r_mean']:.2f}); test at best val: "
              + json.dumps({k: round(v, 2) for k, v in summary.test_at_best_val.items()}))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from harma.eval_checkpoint import evaluate_checkpoint
    from harma.model.build import check_image_size

    cfg = load_config(args.config, args.overrides)
    check_image_size(cfg)
    results = evaluate_checkpoint(cfg, args.checkpoint, splits=args.splits)
    print(json.dumps(results, indent=2))
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from harma.model.build import build_model
    from harma.model.freeze import parameter_report

    cfg = load_config(args.config, args.overrides)
    model = build_model(cfg)
    print(f"arch {cfg.model.arch}  share={cfg.adapter.share}  towers={cfg.adapter.towers}  "
          f"bottleneck={cfg.adapter.bottleneck}  heads={cfg.adapter.heads}")
    report = parameter_report(model)
    for name, (count, params) in report.items():
        each = f"{params // count:>12,} x {count:<3d}" if count > 1 else " " * 18
        print(f"  {name:<22s} {each} {params:>14,}")
    trainable, total = report["trainable total"][1], report["all parameters"][1]
    print(f"trainable {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harma", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train HarMA (one process, or under torchrun for DDP)")
    _add_config_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a harma checkpoint or the authors' checkpoint_best.pth")
    _add_config_args(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--splits", nargs="+", default=["val", "test"], choices=["val", "test"])
    p.set_defaults(func=cmd_eval)

    model = sub.add_parser("model", help="model commands").add_subparsers(dest="model_command", required=True)
    p = model.add_parser("info", help="trainable / total parameters per component")
    _add_config_args(p)
    p.set_defaults(func=cmd_model_info)

    from harma.data.cli import add_data_commands
    add_data_commands(sub)
    from harma.fetch.cli import add_fetch_commands
    add_fetch_commands(sub)
    _add_optional(sub, "harma.results.cli", "add_results_commands")
    _add_optional(sub, "harma.study_cli", "add_study_commands")
    _add_optional(sub, "harma.report.cli", "add_report_commands")
    return parser


def _add_optional(sub, module: str, function: str) -> None:
    """Register commands whose module needs optional dependencies; absent extras leave them out."""
    import importlib

    try:
        getattr(importlib.import_module(module), function)(sub)
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.split(".")[0] not in ("ray", "optuna", "pyarrow", "plotly", "pandas", "scipy"):
            raise


SIGPIPE_EXIT = 141    # what a shell reports for a command whose reader went away (128 + SIGPIPE)


def _stdout_to_devnull() -> None:
    """After the reader of stdout went away (`harma ... | head`): send what is left, and the flush at exit,
    nowhere, so no second BrokenPipeError is printed."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except BrokenPipeError:
        _stdout_to_devnull()
        return SIGPIPE_EXIT
    except HarmaError as exc:
        print(f"harma: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except FileNotFoundError as exc:
        print(f"harma: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
