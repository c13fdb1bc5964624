"""What a trial reports and what the results tables record, shared by the trial side and the driver side.

`TrialSpec` is what a trial runs (the value of its Tune config's `TRIAL_KEY`); `epoch_result` is what a trial
reports to Tune for an epoch: the trainer's `EpochRecord.flat()` view with the planned epochs, the GPUs the
reporting process sees and where it ran; `final_status` decides COMPLETE / PRUNED / FAILED from a trial's last
result (one rule for Parquet and for Optuna); `error_summary` bounds what the error column keeps; `provenance`
collects the harma package's git commit and dirty flag (from the checkout harma is imported from, whatever
the working folder) and package versions once per driver.
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from harma.epoch_record import EpochRecord
from harma.results.trials import COMPLETE, FAILED, PRUNED

FAILURE_KEY = "trial_failure"    # in a trial's last result: why it failed deterministically
FAILURE_TYPE_KEY = "trial_failure_type"   # ... and the class of that error (harma.errors.is_curable reads it)
ERROR_TAIL_CHARS = 2000          # how much of a traceback the error column keeps, after its last line
GPU_KEYS = ("gpu_name", "gpu_count", "cuda_version")


def is_epoch_result(result: Mapping[str, Any]) -> bool:
    """Tune results that carry an epoch's metrics."""
    return "epoch" in result


TRIAL_KEY = "trial"               # the one key of a Tune trial's config; its value is the trial's TrialSpec


@dataclass(frozen=True)
class TrialSpec:
    """What one trial runs: its harma id, its arm (ablation, replicate), seed, the dotted overrides of the study's
    base config, and for a search the Optuna trial number and the trial whose parameters warm-started it."""
    trial_id: str
    seed: int
    overrides: Mapping[str, Any]
    arm: str | None = None
    optuna_number: int | None = None
    warm_start_from: str | None = None


def trial_spec(config: Mapping[str, Any]) -> TrialSpec:
    """The TrialSpec of a Tune trial's config."""
    return config[TRIAL_KEY]


@functools.lru_cache(maxsize=1)
def gpu_info() -> dict[str, Any]:
    """{"gpu_name", "gpu_count", "cuda_version"} of the GPUs this process sees (name and version None
    without a GPU; several distinct names are joined by ', ')."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    names = sorted({torch.cuda.get_device_name(i) for i in range(count)})
    return {"gpu_name": ", ".join(names) or None, "gpu_count": count,
            "cuda_version": torch.version.cuda if count else None}


def epoch_result(record: EpochRecord, planned_epochs: int, where: Mapping[str, Any]) -> dict[str, Any]:
    """record.flat() with "planned_epochs", the GPUs this process sees (those known) and `where`."""
    return {**record.flat(), "planned_epochs": planned_epochs,
            **{k: v for k, v in gpu_info().items() if v is not None}, **where}


def failure_result(error: BaseException, metric: str) -> dict[str, Any]:
    """The last result of a trial that failed for a reason a rerun repeats (a non-finite loss): reported, not
    raised, so Tune's retries (meant for killed workers) never rerun it; `metric` (NaN) satisfies Tune's check
    that every result carries the objective."""
    return {FAILURE_KEY: f"{type(error).__name__}: {error}", FAILURE_TYPE_KEY: type(error).__name__,
            metric: float("nan")}


def final_status(result: Mapping[str, Any] | None, error: bool) -> str:
    """FAILED on error or a failure result; COMPLETE when the trial reached its planned epochs; else PRUNED
    (stopped early)."""
    if error or (result and FAILURE_KEY in result):
        return FAILED
    if not result or "epoch" not in result:
        return PRUNED
    return COMPLETE if int(result["epoch"]) >= int(result["planned_epochs"]) else PRUNED


def error_summary(text: str | None) -> str:
    """What the error column keeps of an error text or traceback: its last line (the error itself) first, then
    at most ERROR_TAIL_CHARS of what came before it."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return "trial failed (no error text)"
    last, before = lines[-1].strip(), "\n".join(lines[:-1])
    if not before:
        return last
    tail = before[-ERROR_TAIL_CHARS:]
    return f"{last}\n{'...' if len(before) > ERROR_TAIL_CHARS else ''}{tail}"


@dataclass(frozen=True)
class Provenance:
    """What the study driver records once for every trial row."""
    git_commit: str | None
    git_dirty: bool | None
    package_versions: str           # JSON {package: version}


def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def package_checkout() -> Path | None:
    """The git checkout the harma package is imported from (its top level holds this very package), or None
    for an installed copy, even one that sits inside another project's repository."""
    import harma

    package = Path(harma.__file__).resolve().parent
    top = _git(package, "rev-parse", "--show-toplevel")
    if top is None or (Path(top.strip()) / "harma").resolve() != package:
        return None
    return Path(top.strip())


def provenance() -> Provenance:
    versions = {"python": sys.version.split()[0]}
    for pkg in ("harma", "torch", "open_clip_torch", "ray", "optuna", "pyarrow"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    checkout = package_checkout()
    commit = _git(checkout, "rev-parse", "HEAD") if checkout else None
    status = _git(checkout, "status", "--porcelain", "--untracked-files=no") if commit else None
    return Provenance(git_commit=commit.strip() or None if commit else None,
                      git_dirty=None if status is None else bool(status.strip()),
                      package_versions=json.dumps(versions, sort_keys=True))
