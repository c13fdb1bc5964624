"""Driver-side Tune callback: writes every trial's rows to Parquet as results arrive and prints progress.

All writes happen in the study driver (one writer, no races between trials): a RUNNING row when a trial
starts, an epoch file and an updated trial row at each reported epoch, and the final row (COMPLETE, PRUNED or
FAILED with the error text) when it ends.  A driver crash therefore loses at most the epoch in flight, and a
resumed trial reports its recorded epochs again, so that one comes back too.  A trial restarted by Tune after
its worker died is announced with its retry count.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

from ray.tune import Callback

import yaml

from harma.config import to_dict
from harma.epoch_record import MEMORY_KEYS, best_metric_key, curves
from harma.terms import EVAL_SPLITS
from harma.metrics import METRIC_KEYS
from harma.results.schema import StudyColumns, record_from_row, trial_column
from harma.results.store import ResultsStore
from harma.results.trials import FAILED, OBSERVED, RUNNING, best_first
from harma.study.model import Study
from harma.tune.records import (FAILURE_KEY, FAILURE_TYPE_KEY, GPU_KEYS, Provenance, TrialSpec, error_summary,
                                final_status, is_epoch_result, trial_spec)
from harma.tune.trial import trial_run_config


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def error_text(trial) -> str:
    """The error Tune recorded for a trial (its traceback), as the error column keeps it."""
    path = getattr(trial, "error_file", None)
    try:
        if path:
            with open(path) as fh:
                return error_summary(fh.read())
    except OSError:
        pass
    return "trial failed (no error file)"


def resolved_config(study: Study, trial: TrialSpec, checkpoint_root: str) -> str:
    """The YAML text of the run config the trial trains with."""
    return yaml.safe_dump(to_dict(trial_run_config(study, trial, checkpoint_root)), sort_keys=False)


class ParquetResults(Callback):
    """`protected`: ids of finished trials, whose rows this run never writes; `max_retries`: how many times
    Tune restarts a trial whose worker died (for the progress line)."""

    def __init__(self, study: Study, store: ResultsStore, columns: StudyColumns, provenance: Provenance,
                 checkpoint_root: str, total: int, echo=print, protected: set[str] = frozenset(),
                 max_retries: int = 0):
        self.study, self.store, self.columns, self.provenance = study, store, columns, provenance
        self.checkpoint_root, self.protected, self.max_retries = checkpoint_root, set(protected), max_retries
        self.total, self.objective_key, self.echo = total, columns.objective, echo
        self.rows: dict[str, dict[str, Any]] = {}
        self.started: dict[str, float] = {}
        self.retries: dict[str, int] = {}
        self.done = 0
        trials = store.read_trials(study.name)
        self.earlier = {row["trial_id"]: record_from_row(row) for row in trials.to_dict("records")} if len(
            trials) else {}
        ranked = best_first(trials, OBSERVED)   # the best so far counts the trials earlier drivers finished
        self.best: tuple[float, str] | None = (float(ranked.iloc[0][self.objective_key]),
                                               ranked.iloc[0]["trial_id"]) if len(ranked) else None

    def _row(self, trial) -> dict[str, Any]:
        """The trial's row, started from what an earlier driver recorded for it (a resumed trial keeps its
        start time, wall time and best metrics until its replayed epochs arrive)."""
        spec = trial_spec(trial.config)
        tid = spec.trial_id
        if tid not in self.rows:
            earlier = {k: v for k, v in self.earlier.get(tid, {}).items() if k not in ("error", "error_type", "finished_at")}
            self.started[tid] = time.time() - float(earlier.get("wall_seconds") or 0.0)
            self.rows[tid] = {**earlier,
                              "study": self.study.name, "trial_id": tid, "kind": self.study.kind,
                              "arm": spec.arm, "seed": spec.seed, "status": RUNNING,
                              "warm_start_from": spec.warm_start_from,
                              "params": {**self.study.base_set, **spec.overrides},
                              "started_at": earlier.get("started_at") or _now(),
                              "resolved_config": resolved_config(self.study, spec, self.checkpoint_root),
                              "git_commit": self.provenance.git_commit, "git_dirty": self.provenance.git_dirty,
                              "package_versions": self.provenance.package_versions}
        return self.rows[tid]

    def _write(self, row: dict[str, Any]) -> None:
        """Write the trial's row, never over a trial an earlier run finished."""
        if row["trial_id"] in self.protected:
            self.echo(f"[{self.study.name}] {row['trial_id']} finished in an earlier run; its row is kept",
                      flush=True)
            return
        self.store.write_trial({k: v for k, v in row.items() if k != "_last"}, self.columns)

    def _elapsed(self, tid: str, row: dict) -> None:
        row["wall_seconds"] = time.time() - self.started[tid]
        row["gpu_seconds"] = row["wall_seconds"] * self.study.resources.gpus_per_trial

    def on_trial_start(self, iteration, trials, trial, **info):
        self._write(self._row(trial))

    def on_trial_recover(self, iteration, trials, trial, **info):
        row = self._row(trial)
        tid = row["trial_id"]
        self.retries[tid] = self.retries.get(tid, 0) + 1
        # A reported epoch was checkpointed before its report, so a trial with one has a checkpoint.
        start = (f"from its checkpoint (epoch {row['stop_epoch']})" if row.get("stop_epoch")
                 else "from the start (no epoch was checkpointed)")
        self.echo(f"[{self.study.name}] {tid} failed ({error_text(trial).splitlines()[0][:200]}); retry "
                  f"{self.retries[tid]} of {self.max_retries}, {start}", flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if FAILURE_KEY in result:
            self._row(trial)["_last"] = result
        if not is_epoch_result(result):
            return
        row = self._row(trial)
        tid = row["trial_id"]
        epoch = int(result["epoch"])
        self.store.write_epoch(self.study.name, tid, epoch, curves(result), result.get("epoch_seconds"))
        row.update({"stop_epoch": epoch, "best_epoch": int(result["best_epoch"]),
                    "trainable_params": int(result["trainable_params"]), "total_params": int(result["total_params"]),
                    "host": result.get("host"), "node_id": result.get("node_id"), "_last": result,
                    **{k: result.get(k) for k in GPU_KEYS}})
        for key in MEMORY_KEYS:
            if result.get(key) is not None:
                row[key] = max(int(result[key]), row.get(key) or 0)
        for split in EVAL_SPLITS:             # the trial's metrics are those of its best epoch so far
            row.update({trial_column(split, k): result[best_metric_key(split, k)] for k in METRIC_KEYS})
        self._elapsed(tid, row)
        self._write(row)

    def _finish(self, trial, error: bool) -> None:
        row = self._row(trial)
        status = final_status(row.get("_last"), error)
        row.update({"status": status, "finished_at": _now()})
        if status == FAILED:
            last = row.get("_last") or {}
            row["error"] = error_summary(last[FAILURE_KEY]) if FAILURE_KEY in last else error_text(trial)
            row["error_type"] = last.get(FAILURE_TYPE_KEY)
        self._elapsed(row["trial_id"], row)
        self._write(row)
        self._report(row)

    def _report(self, row: dict) -> None:
        self.done += 1
        value = row.get(self.objective_key)
        if value is not None and row["status"] != FAILED:
            better = self.best is None or (value > self.best[0] if self.study.objective.mode == "max"
                                           else value < self.best[0])
            if better:
                self.best = (value, row["trial_id"])
        shown = f"{self.objective_key} {value:.2f}" if value is not None else "no result"
        best = f"best {self.best[0]:.2f} ({self.best[1]})" if self.best else "best -"
        where = f" at epoch {row.get('stop_epoch')}" if row.get("stop_epoch") is not None else ""
        self.echo(f"[{self.study.name}] {self.done}/{self.total} {row['trial_id']} {row['status']}{where}: "
                  f"{shown}; {best}", flush=True)
        if row["status"] == FAILED:
            self.echo(f"[{self.study.name}]   error: {(row.get('error') or '').splitlines()[0][:300]}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, error=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, error=True)
