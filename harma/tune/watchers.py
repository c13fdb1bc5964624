"""Who watches a study while it runs, and what the driver tells them first.

`Watch` is what the command line asks for (the console sink of the live view, an MLflow URI given with
`--mlflow`, Ray's and Optuna's own logs with `--verbose`); `watch_sinks` adds what the study file asks for:
TensorBoard event files per trial (unless `tracking: {tensorboard: false}`) and MLflow runs (`tracking: {mlflow:
URI}`, or the `--mlflow` URI).  `study_began` is the first event of a driver's run: the plan, and the trials
earlier drivers finished (their statuses and objective values, from Parquet), so counts and the best so far
span every driver of the study.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harma.config import planned_epochs
from harma.progress.events import FinishedTrial, Sink, StudyBegan
from harma.results.trials import FINISHED, is_missing
from harma.schedulers.base import is_early_stopping
from harma.study.columns import objective_column
from harma.study.model import Study
from harma.tracking.tensorboard import TensorBoardSink, tensorboard_root


@dataclass(frozen=True)
class Watch:
    console: Sink | None = None       # the live view (None: no console output but harma's lines)
    mlflow: str | None = None         # an MLflow tracking URI from the command line
    verbose: bool = False             # Ray's and Optuna's own logs too


def tensorboard_folder(study: Study) -> Path:
    return tensorboard_root(study.storage_path(), study.storage_is_remote, study.name)


def watch_sinks(study: Study, watch: Watch, checkpoints: str, echo: Callable[..., None]) -> list[Sink]:
    """The sinks of this run: the console's, TensorBoard's and MLflow's (each when asked for)."""
    sinks: list[Sink] = [watch.console] if watch.console is not None else []
    if study.tracking.tensorboard:
        folder = tensorboard_folder(study)
        sinks.append(TensorBoardSink(folder))
        echo(f"[{study.name}] TensorBoard: tensorboard --logdir {folder}", flush=True)
    uri = watch.mlflow or study.tracking.mlflow
    if uri:
        from harma.tracking.mlflow_runs import MlflowSink

        sinks.append(MlflowSink(uri, lambda tid: Path(checkpoints) / study.name / tid / "best.pt"))
        echo(f"[{study.name}] MLflow: experiment {study.name!r} at {uri}", flush=True)
    return sinks


def study_began(study: Study, trials, finished: set[str], to_run: int, concurrency: int) -> StudyBegan:
    """The first event of a driver's run; `trials` is the study's trials frame, `finished` the ids of the
    trials earlier drivers finished that this run keeps."""
    column = objective_column(study)
    earlier = tuple(FinishedTrial(row["trial_id"], row["status"],
                                  None if is_missing(row.get(column)) else float(row[column]))
                    for row in (trials.to_dict("records") if len(trials) else [])
                    if row["trial_id"] in finished and row["status"] in FINISHED)
    return StudyBegan(study.name, study.kind, column, study.objective.mode, to_run + len(earlier), to_run,
                      concurrency, planned_epochs(study.run_config()), is_early_stopping(study.scheduler),
                      time.time(), earlier)
