"""Driver-side Tune callback: writes every trial's rows to Parquet as results arrive and prints progress.

All writes happen in the study driver (one writer, no races between trials): a RUNNING row when a trial
starts, an epoch file and an updated trial row at each reported epoch, and the final row (COMPLETE, PRUNED or
FAILED with the error text) when it ends.  A driver crash therefore loses at most the epoch in flight.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

from ray.tune import Callback

from harma.metrics import METRIC_KEYS, REPORTED_KEYS
from harma.results.store import ResultsStore
from harma.tune.records import FAILED, RUNNING, final_status, is_epoch_result
from harma.tune.study import Study

TRAIN_METRICS = ("loss", "loss_contr", "loss_triplet", "loss_affil", "lr", "images_per_s")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    try:
        if path:
            with open(path) as fh:
                text = fh.read().strip()
            return text[-4000:]
    except OSError:
        pass
    return "trial failed (no error file)"


class ParquetResults(Callback):
    def __init__(self, study: Study, store: ResultsStore, provenance: dict[str, Any], total: int,
                 objective_key: str, echo=print):
        self.study, self.store, self.provenance = study, store, provenance
        self.total, self.objective_key, self.echo = total, objective_key, echo
        self.rows: dict[str, dict[str, Any]] = {}
        self.started: dict[str, float] = {}
        self.done = 0
        self.best: tuple[float, str] | None = None

    def _row(self, trial) -> dict[str, Any]:
        info = trial.config["trial"]
        tid = info["trial_id"]
        if tid not in self.rows:
            self.started[tid] = time.time()
            self.rows[tid] = {"study": self.study.name, "trial_id": tid, "kind": self.study.kind,
                              "arm": info.get("arm"), "seed": info.get("seed"), "status": RUNNING,
                              "params": dict(info["overrides"]), "started_at": _now(),
                              "git_commit": self.provenance["git_commit"],
                              "package_versions": self.provenance["package_versions"]}
        return self.rows[tid]

    def _elapsed(self, tid: str, row: dict) -> None:
        row["wall_seconds"] = time.time() - self.started[tid]
        row["gpu_seconds"] = row["wall_seconds"] * self.study.resources.gpus_per_trial

    def on_trial_start(self, iteration, trials, trial, **info):
        self.store.write_trial(self._row(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if not is_epoch_result(result):
            return
        row = self._row(trial)
        tid = row["trial_id"]
        epoch = int(result["epoch"])
        metrics = {split: {k: result[f"{split}_{k}"] for k in REPORTED_KEYS if f"{split}_{k}" in result}
                   for split in ("val", "test")}
        metrics["train"] = {k: result[k] for k in TRAIN_METRICS if k in result}
        self.store.write_epoch(self.study.name, tid, epoch, metrics, result.get("epoch_seconds"))
        row.update({"stop_epoch": epoch, "best_epoch": int(result["best_epoch"]),
                    "trainable_params": int(result["trainable_params"]), "total_params": int(result["total_params"]),
                    "peak_memory_bytes": max(int(result["peak_memory_bytes"]), row.get("peak_memory_bytes") or 0),
                    "host": result.get("host"), "node_id": result.get("node_id"), "_last": result})
        for key in METRIC_KEYS:
            row[f"val_{key}"] = result[f"best_val_{key}"]
            row[f"test_{key}"] = result[f"best_test_{key}"]
        self._elapsed(tid, row)
        self.store.write_trial({k: v for k, v in row.items() if k != "_last"})

    def _finish(self, trial, error: bool) -> None:
        row = self._row(trial)
        status = final_status(row.get("_last"), error)
        row.update({"status": status, "finished_at": _now()})
        if status == FAILED:
            row["error"] = _error_text(trial)
        self._elapsed(row["trial_id"], row)
        self.store.write_trial({k: v for k, v in row.items() if k != "_last"})
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
            self.echo(f"[{self.study.name}]   error: {(row.get('error') or '').splitlines()[-1][:300]}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, error=False)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, error=True)
