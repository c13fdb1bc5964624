"""`harma study run|status|resume|verify`: the study commands, registered into the `harma` CLI.

`status` and `resume` take a study file or a bare name; a name with no `studies/NAME.yaml` is read from the snapshot
the study saved in its results storage (`--results ROOT`, default `$HARMA_RESULTS`, else `results`:
harma.study.snapshot).  Before Ray starts, `run` and `resume` check that the results storage is writable and that
`--address` is a Ray cluster (harma.tune.preflight).  While they run, the live view (harma.progress.console) shows
the running trials, redrawn in place on a terminal and as one line per epoch elsewhere; `--quiet` leaves only the
final line and errors, `--verbose` adds Ray's and Optuna's own logs (harma.tune.quiet).
"""
from __future__ import annotations

import argparse


def _run(args: argparse.Namespace, study, target: str, resume: bool) -> int:
    """Run or resume, then exit 0, 130 (SIGINT), 143 (SIGTERM) or 1 (trials missing, too many FAILED) with one
    stderr line."""
    import sys
    import time

    from harma.report.live import live_report_for
    from harma.tune.outcome import EXIT_CODES, SigtermUnwinds, Terminated, signal_text, study_outcome
    from harma.tune.preflight import preflight
    from harma.tune.runner import run_study

    watch, echo = _watch(args, study)
    started = time.monotonic()
    try:
        with SigtermUnwinds():
            preflight(study, args.address)
            with live_report_for(study, args.report, args.report_every):
                summary = run_study(study, address=args.address, resume=resume, max_retries=args.max_retries,
                                    echo=echo, watch=watch)
    except KeyboardInterrupt as exc:
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(f"harma: study {target} stopped by {signal_text(name)} before it finished; `harma study resume "
              f"{target}` continues it", file=sys.stderr)
        return EXIT_CODES[name]
    name = summary.get("name", target)
    if not summary["interrupted"]:
        print(final_line(study, summary, time.monotonic() - started), flush=True)
    outcome = study_outcome(name, summary["planned"], summary["counts"], summary["interrupted"],
                            args.max_failed_share)
    if outcome.message:
        print(f"harma: {outcome.message}", file=sys.stderr)
    return outcome.code


def _silent(*args, **kwargs) -> None:
    """The echo of `--quiet`: harma's progress lines go nowhere."""


def _watch(args: argparse.Namespace, study):
    """(what watches the run, how harma's own lines print) for `--quiet`, `--verbose` and `--mlflow`."""
    import os
    import sys

    from harma.progress.console import QUIET, ConsoleSink, console_mode
    from harma.tune.watchers import Watch

    mode = console_mode(args.quiet, sys.stdout)
    echo = _silent if mode == QUIET else print
    asked = os.environ.get("MLFLOW_TRACKING_URI") if args.mlflow else None     # --mlflow: opt in to the variable
    _check_mlflow(study, asked or study.tracking.mlflow, args.mlflow)
    return Watch(None if mode == QUIET else ConsoleSink(mode, echo), asked, args.verbose), echo


def _check_mlflow(study, uri: str | None, asked: bool) -> None:
    """StudyError for `--mlflow` without a tracking URI, or MLflow asked for without the mlflow package."""
    import importlib.util

    from harma.errors import StudyError

    if asked and not uri:
        raise StudyError("--mlflow: no tracking URI: set MLFLOW_TRACKING_URI (e.g. http://127.0.0.1:5000 or "
                         "sqlite:///mlflow.db), or `tracking: {mlflow: URI}` in the study file")
    if uri and importlib.util.find_spec("mlflow") is None:
        raise StudyError(f"{study.source}: tracking.mlflow: MLflow tracking needs the mlflow package (pip install "
                         "'harma[mlflow]')")


def final_line(study, summary: dict, seconds: float) -> str:
    """`[NAME] done in 1m32s: COMPLETE 5, PRUNED 1 of 6 trials; best val_r_mean 46.30 (trial-0005)`."""
    from harma.progress.render import duration
    from harma.study.columns import objective_column

    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items())) or "no trials"
    best = summary.get("best")
    shown = f"{best[0]:.2f} ({best[1]})" if best else "–"
    return (f"[{study.name}] done in {duration(seconds)}: {counts} of {summary['planned']} trials; best "
            f"{objective_column(study)} {shown}")


def _count(text: str) -> int:
    """argparse type for --max-retries: a whole number >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def cmd_run(args: argparse.Namespace) -> int:
    from harma.study.fresh import check_fresh
    from harma.study.parse import load_study

    study = load_study(args.file)
    check_fresh(study)                 # a refused re-run costs no Ray, Optuna or pyarrow import
    return _run(args, study, args.file, resume=False)


def cmd_resume(args: argparse.Namespace) -> int:
    from harma.study.snapshot import find_study

    return _run(args, find_study(args.name, args.results, resume=True), args.name, resume=True)


def _add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", nargs="?", const="", default=None, metavar="DIR", help="keep the study's report "
                   "page up to date while it runs (default DIR: reports/NAME)")
    from harma.report.live import seconds
    from harma.tune.outcome import DEFAULT_MAX_FAILED_SHARE, DEFAULT_MAX_RETRIES, failed_share

    p.add_argument("--report-every", type=seconds, default=30.0, metavar="SECONDS",
                   help="rebuild the live report at most this often (default 30)")
    p.add_argument("--max-failed-share", type=failed_share, default=DEFAULT_MAX_FAILED_SHARE, metavar="SHARE",
                   help="exit 1 when more than this share of the study's trials FAILED "
                   f"(default {DEFAULT_MAX_FAILED_SHARE:g}); Ctrl-C exits 130")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print only the final line and errors")
    noise.add_argument("-v", "--verbose", action="store_true", help="also print Ray's, Tune's and Optuna's own "
                       "logs and the trials' output")
    p.add_argument("--mlflow", action="store_true", help="also track the study in MLflow at MLFLOW_TRACKING_URI "
                   "(or the study file's tracking.mlflow): one run per trial under a run for the study")
    p.add_argument("--max-retries", type=_count, default=DEFAULT_MAX_RETRIES, metavar="N",
                   help="restart a trial whose worker died up to N times, from its checkpoint (default "
                   f"{DEFAULT_MAX_RETRIES}); "
                   "a non-finite loss is never retried")


def cmd_status(args: argparse.Namespace) -> int:
    from harma.study.snapshot import find_study

    study = find_study(args.name, args.results)       # before pyarrow and pandas are imported
    from harma.results.overrides import train_command

    from harma.results.store import ResultsStore
    from harma.results.trials import best_first, objective_label, row_overrides

    store = ResultsStore(args.results or study.storage_path())
    trials = store.read_trials(study.name)
    if len(trials) == 0:
        print(f"{study.name}: no trials recorded yet")
        return 0
    counts = trials["status"].value_counts().to_dict()
    print(f"{study.name} ({study.kind}): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + f", {len(trials)} in all")
    done = best_first(trials)
    if len(done):
        best = done.iloc[0]
        overrides = {**study.base_set, **row_overrides(best)}
        print(f"best so far by {objective_label(done.head(1))}: {best['trial_id']} {best['objective']} "
              f"{best[best['objective']]:.2f} (test r_mean {best['test_r_mean']:.2f})")
        print(f"  reproduce: {train_command(study.base_config, overrides)}")
    if study.kind == "search":
        _print_importances(study, store, trials)
    return 0


def _print_importances(study, store, trials) -> None:
    """Compute, record and print the importances from MIN_IMPORTANCE_TRIALS COMPLETE trials on (as the report
    page shows them); below that, one line saying how many there are and the minimum."""
    from harma.results.trials import complete_count, importances_withheld
    from harma.tune.importance import record_importances

    withheld = importances_withheld(complete_count(trials))
    if withheld is not None:
        print(f"importances: {withheld}")
        return
    result = record_importances(study, store)
    if result.reason is not None:
        print(f"importances: none ({result.reason})")
        return
    ranked = sorted(result.importances.items(), key=lambda kv: -kv[1])
    print(f"importances over {result.n_trials} COMPLETE trials ({result.evaluator}): "
          + ", ".join(f"{k} {v:.2f}" for k, v in ranked))


def cmd_verify(args: argparse.Namespace) -> int:
    """One line per problem on stdout, a summary line, exit 1 when there is any problem."""
    from harma.study.snapshot import find_study
    from harma.verify import study_places, verify_study

    study = find_study(args.name, args.results)
    verdict = verify_study(study, study_places(study, args.results), top=args.top, tolerance=args.tolerance,
                           evaluate=not args.no_eval)
    for problem in verdict.problems:
        print(f"problem: {problem}")
    print(f"verify {verdict.study}: {verdict.trials} trial row(s), {verdict.evaluated} best.pt re-evaluated, "
          f"{len(verdict.problems)} problem(s)")
    return 1 if verdict.problems else 0


def _positive(text: str) -> int:
    """argparse type for --top: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (recall points), got {text!r}")
    return value


def _add_verify(study) -> None:
    from harma.verify import DEFAULT_TOLERANCE

    p = study.add_parser("verify", help="check every finished trial's checkpoints, log, epochs and Optuna state "
                         "against its results row; exit 1 on any problem")
    p.add_argument("name", help="study file, or study name (studies/NAME.yaml, else its snapshot)")
    p.add_argument("--results", default=None, help="results root (default: the study's storage)")
    p.add_argument("--top", type=_positive, default=None, metavar="K",
                   help="re-evaluate only the K best finished trials (default: all)")
    p.add_argument("--tolerance", type=_tolerance, default=DEFAULT_TOLERANCE, metavar="POINTS",
                   help=f"largest difference in recall points between a re-evaluated best.pt and its row "
                   f"(default {DEFAULT_TOLERANCE:g})")
    p.add_argument("--no-eval", action="store_true", help="check files, epochs and Optuna only (no torch)")
    p.set_defaults(func=cmd_verify)


def add_study_commands(sub) -> None:
    study = sub.add_parser("study", help="Ray Tune studies: run, status, resume").add_subparsers(
        dest="study_command", required=True)
    p = study.add_parser("run", help="run a study file (no --address: a local Ray on 127.0.0.1)")
    p.add_argument("file")
    p.add_argument("--address", default=None, help="auto, HOST:PORT or ray://HOST:PORT of a running cluster")
    _add_report_args(p)
    p.set_defaults(func=cmd_run)
    p = study.add_parser("resume", help="continue a study after its driver died")
    p.add_argument("name", help="study file, or study name (studies/NAME.yaml, else the snapshot the study "
                   "saved in its results root)")
    p.add_argument("--address", default=None)
    p.add_argument("--results", default=None, help="results root the study ran into (default: the study's "
                   "storage; for a name without a study file: results)")
    _add_report_args(p)
    p.set_defaults(func=cmd_resume)
    p = study.add_parser("status", help="trial counts by status and the best so far, from Parquet")
    p.add_argument("name", help="study file, or study name (studies/NAME.yaml, else the snapshot the study "
                   "saved in its results root)")
    p.add_argument("--results", default=None, help="results root (default: the study's storage; for a name "
                   "without a study file: results)")
    p.set_defaults(func=cmd_status)
    _add_verify(study)
