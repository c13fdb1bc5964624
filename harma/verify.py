"""`harma study verify NAME`: check that what a study hands back is what it measured.

For every finished trial (COMPLETE or PRUNED) of the study: its run folder holds `best.pt` of the recorded best
epoch, `last.pt` of the last reported epoch and a `log.jsonl` line for every reported epoch whose objective at
the best epoch equals the row's; the epochs table holds every reported epoch and none past it; and `best.pt`,
re-evaluated on the split the objective was measured on (in the trial's own resolved config), gives the row's
objective within `tolerance` (recall points).  For a search, Optuna's storage must agree with Parquet (one
finished Optuna trial per finished row, the same state, a COMPLETE trial's value equal to the row's
objective).  Files that should not be there are listed too: trials files whose name is not their trial id,
run folders without a row, temporary files of killed writes.  Each problem is one `Problem`; the CLI prints one
line per problem and exits 1 when there is any.  `--top K` re-evaluates only the K best trials.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

DEFAULT_TOLERANCE = 0.01          # recall points: the same weights on the same data re-evaluate to the same mR


@dataclass(frozen=True)
class Problem:
    """One thing that does not match: the trial (or file) it concerns and what is wrong."""
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class Verdict:
    """What `verify_study` checked and the problems it found."""
    study: str
    trials: int
    evaluated: int
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class Places:
    """Where a study's results and trial run folders are."""
    results: str
    runs: Path


def study_places(study, results: str | None) -> Places:
    """The study's results root (`results` when given) and its trial run folders (as the runner lays them out)."""
    root = results or study.storage_path()
    runs = Path(os.path.expanduser("~/.harma/runs")) if "://" in root else Path(root) / "runs"
    return Places(root, runs / study.name)


def verify_study(study, places: Places, top: int | None = None, tolerance: float = DEFAULT_TOLERANCE,
                 evaluate: bool = True, echo: Callable[..., None] = print) -> Verdict:
    """Run every check of the module docstring; `evaluate=False` skips the re-evaluation (no torch)."""
    from harma.errors import ResultsFileError
    from harma.results.store import ResultsStore

    store = ResultsStore(places.results)
    problems = list(_file_problems(store, study.name, places))
    try:
        trials, epochs = store.read_trials(study.name), store.read_epochs(study.name)
    except ResultsFileError as exc:
        return Verdict(study.name, 0, 0, tuple(problems + [Problem("results", str(exc))]))
    rows = trials.to_dict("records")
    for row in rows:
        problems += _row_problems(row, epochs, places.runs)
    if study.kind == "search":
        problems += _optuna_problems(study, rows)
    evaluated = 0
    if evaluate:
        chosen = _chosen(trials, top)
        for i, row in enumerate(chosen, 1):
            echo(f"[{study.name}] re-evaluating {row['trial_id']} ({i}/{len(chosen)})", flush=True)
            problems += _evaluation_problems(row, places.runs, tolerance)
        evaluated = len(chosen)
    return Verdict(study.name, len(rows), evaluated, tuple(problems))


# files ------------------------------------------------------------------------------------------------------
def _file_problems(store, study: str, places: Places) -> Iterable[Problem]:
    """Trials files not named after the trial they hold, run folders with no trials file, write debris."""
    from harma.atomic import find_debris
    from harma.results import fsio

    folder = f"{store.base}/trials/study={study}"
    ids = set()
    for path in fsio.parquet_files(store.fs, folder):
        held = _trial_ids_in(store, path)
        ids |= held
        name = path.rsplit("/", 1)[1][: -len(".parquet")]
        if held != {name}:
            yield Problem(path, f"a stray trials file: it holds {sorted(held)}, not trial {name!r} its name "
                                "says; move it out of the results folder")
    if places.runs.is_dir():
        for run in sorted(p for p in places.runs.iterdir() if p.is_dir()):
            if run.name not in ids:
                yield Problem(str(run), "a run folder with no trials row")
    if fsio.is_local(store.fs):
        for base in (f"{store.base}/trials/study={study}", f"{store.base}/epochs/study={study}", places.runs):
            for path in find_debris(base) if os.path.isdir(base) else ():
                yield Problem(str(path), "a temporary file of a write that was killed (the next run or resume of "
                                         "the study removes it)")


def _trial_ids_in(store, path: str) -> set[str]:
    from harma.results import fsio

    try:
        return set(fsio.read_table(store.fs, path).column("trial_id").to_pylist())
    except Exception:  # an unreadable file: read_trials names it
        return set()


# one row ----------------------------------------------------------------------------------------------------
def _row_problems(row: dict, epochs, runs: Path) -> list[Problem]:
    from harma.results.trials import OBSERVED, RUNNING

    tid = row["trial_id"]
    if row["status"] == RUNNING:
        return [Problem(tid, "RUNNING: the study has not finished (or its driver died: `harma study resume`)")]
    if row["status"] not in OBSERVED:
        return []
    problems = _epoch_rows_problems(tid, int(row["stop_epoch"]), epochs)
    return problems + _run_folder_problems(row, runs / tid)


def _epoch_rows_problems(tid: str, stop: int, epochs) -> list[Problem]:
    mine = sorted(set(int(e) for e in epochs.loc[epochs["trial_id"] == tid, "epoch"])) if len(epochs) else []
    if mine != list(range(1, stop + 1)):
        return [Problem(tid, f"the epochs table holds epochs {mine}, expected 1..{stop} (its stop epoch)")]
    return []


def _run_folder_problems(row: dict, folder: Path) -> list[Problem]:
    tid, stop, best = row["trial_id"], int(row["stop_epoch"]), int(row["best_epoch"])
    missing = [n for n in ("best.pt", "last.pt", "log.jsonl") if not (folder / n).is_file()]
    if missing:
        return [Problem(tid, f"{folder} lacks {', '.join(missing)}")]
    log = _log_lines(folder / "log.jsonl")
    problems = []
    if [line.get("epoch") for line in log] != list(range(1, stop + 1)):
        problems.append(Problem(tid, f"log.jsonl holds epochs {[line.get('epoch') for line in log]}, expected "
                                     f"1..{stop}"))
    split, metric = row["objective"].split("_", 1)
    logged = next((line for line in log if line.get("epoch") == best), None)
    value = row[row["objective"]]
    if logged is not None and not _close(logged[split][metric], value, 1e-9):
        problems.append(Problem(tid, f"log.jsonl gives {row['objective']} {logged[split][metric]!r} at best epoch "
                                     f"{best}, the row records {value!r}"))
    return problems + _checkpoint_epoch_problems(tid, folder, stop, best)


def _log_lines(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def _checkpoint_epoch_problems(tid: str, folder: Path, stop: int, best: int) -> list[Problem]:
    from harma.checkpoint import load_checkpoint
    from harma.errors import CheckpointError

    problems = []
    for name, expected, what in (("best.pt", best, "best"), ("last.pt", stop, "stop")):
        try:
            held = int(load_checkpoint(folder / name)["epoch"])
        except (CheckpointError, KeyError, TypeError) as exc:
            problems.append(Problem(tid, f"{name}: {exc}"))
            continue
        if held != expected:
            problems.append(Problem(tid, f"{name} holds epoch {held}, but the row's {what} epoch is {expected}"))
    return problems


# Optuna -----------------------------------------------------------------------------------------------------
OPTUNA_STATUS = {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED", "FAIL": "FAILED", "RUNNING": "RUNNING"}


def _optuna_problems(study, rows: list[dict]) -> list[Problem]:
    from harma.tune.searcher import harma_id, open_optuna_study

    latest: dict[str, Any] = {}
    for trial in open_optuna_study(study).get_trials(deepcopy=False):
        latest[harma_id(trial)] = trial
    problems = []
    for row in rows:
        trial = latest.pop(row["trial_id"], None)
        if trial is None:
            problems.append(Problem(row["trial_id"], "has a Parquet row but no Optuna trial"))
            continue
        state = OPTUNA_STATUS.get(trial.state.name, trial.state.name)
        if state != row["status"]:
            problems.append(Problem(row["trial_id"], f"Optuna says {state}, Parquet says {row['status']}"))
        elif state == "COMPLETE" and not _close(trial.value, row[row["objective"]], 1e-9):
            problems.append(Problem(row["trial_id"], f"Optuna's value {trial.value!r} differs from the row's "
                                                     f"{row['objective']} {row[row['objective']]!r}"))
    for tid, trial in sorted(latest.items()):
        if trial.state.is_finished():
            problems.append(Problem(tid, f"Optuna trial {trial.number} is {trial.state.name} but has no Parquet row"))
    return problems


# re-evaluation ----------------------------------------------------------------------------------------------
def _chosen(trials, top: int | None) -> list[dict]:
    """The finished trials to re-evaluate, best first (all of them, or the `top` best)."""
    from harma.results.trials import OBSERVED, best_first

    ranked = best_first(trials, OBSERVED).to_dict("records")
    return ranked if top is None else ranked[:top]


def _evaluation_problems(row: dict, runs: Path, tolerance: float) -> list[Problem]:
    from harma.errors import HarmaError

    best = runs / row["trial_id"] / "best.pt"
    if not best.is_file():
        return []                                # named by the run-folder check
    split, metric = row["objective"].split("_", 1)
    try:
        value = reevaluate(row["resolved_config"], best, split)[metric]
    except HarmaError as exc:
        return [Problem(row["trial_id"], f"best.pt cannot be re-evaluated: {exc}")]
    recorded = row[row["objective"]]
    if not _close(value, recorded, tolerance):
        return [Problem(row["trial_id"], f"best.pt re-evaluates {row['objective']} to {value:.4f}, the row records "
                                        f"{recorded:.4f} (tolerance {tolerance:g})")]
    return []


def reevaluate(resolved_config: str, checkpoint: Path, split: str) -> dict[str, float]:
    """The metrics of `checkpoint` on `split` under a trial's resolved config (YAML text), on this machine's
    device; the model is built after seeding as the trainer does (harma.eval_checkpoint)."""
    import yaml

    from harma.config import apply_overrides, from_dict
    from harma.eval_checkpoint import evaluate_checkpoint

    cfg = apply_overrides(from_dict(yaml.safe_load(resolved_config)), {"train.device": "auto"})
    return evaluate_checkpoint(cfg, str(checkpoint), splits=(split,))[split]


def _close(a: Any, b: Any, tolerance: float) -> bool:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tolerance
