"""What a trial reports and what the results tables record, shared by the trial side and the driver side.

`flatten_epoch` turns the trainer's per-epoch record into the flat metrics dict a trial reports to Tune;
`final_status` decides COMPLETE / PRUNED / FAILED from a trial's last result (one rule for Parquet and for
Optuna); `provenance` collects git commit, package versions and host once per driver.
"""
from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from typing import Any, Mapping

from harma.metrics import METRIC_KEYS, REPORTED_KEYS

COMPLETE, PRUNED, FAILED, RUNNING = "COMPLETE", "PRUNED", "FAILED", "RUNNING"


def is_epoch_result(result: Mapping[str, Any]) -> bool:
    """Tune results that carry an epoch's metrics."""
    return "epoch" in result


def flatten_epoch(record: Mapping[str, Any], planned_epochs: int, where: Mapping[str, Any]) -> dict[str, Any]:
    """{"epoch", "planned_epochs", "val_r_mean", ..., "test_r_mean_tie_gap", "best_val_r_mean", ..., "loss", ...}."""
    flat: dict[str, Any] = {"epoch": record["epoch"], "planned_epochs": planned_epochs}
    for split in ("val", "test"):
        for key in REPORTED_KEYS:
            flat[f"{split}_{key}"] = float(record[split][key])
    for key in METRIC_KEYS:
        flat[f"best_val_{key}"] = float(record["best_val"][key])
        flat[f"best_test_{key}"] = float(record["best_test"][key])
    for key, value in record["train"].items():
        flat[key] = float(value)
    for key in ("lr", "epoch_seconds", "images_per_s"):
        flat[key] = float(record[key])
    for key in ("best_epoch", "trainable_params", "total_params", "peak_memory_bytes"):
        flat[key] = int(record[key])
    flat.update(where)
    return flat


def final_status(result: Mapping[str, Any] | None, error: bool) -> str:
    """FAILED on error; COMPLETE when the trial reached its planned epochs; else PRUNED (stopped early)."""
    if error:
        return FAILED
    if not result or "epoch" not in result:
        return PRUNED
    return COMPLETE if int(result["epoch"]) >= int(result["planned_epochs"]) else PRUNED


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict[str, Any]:
    versions = {"python": sys.version.split()[0]}
    for pkg in ("harma", "torch", "open_clip_torch", "ray", "optuna", "pyarrow"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"git_commit": _git_commit(), "package_versions": json.dumps(versions, sort_keys=True)}
