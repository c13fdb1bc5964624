"""Run or resume a study: plan its trials, get a Ray, and fit one Tune experiment over them.

Search studies draw trials from Optuna (ask/tell searcher); ablation studies run every arm for every seed;
replicate studies rerun the top-k COMPLETE trials of a finished search study for each seed.  `resume=True`
keeps every finished trial (from Parquet), reruns the unfinished ones and the FAILED ones a rerun may cure
under their own ids (the trainer picks up their checkpoints and reports their recorded epochs again), rebuilds
the scheduler's records (ASHA's rungs, Hyperband's brackets) from the epochs table and, for a search, hands out
the Optuna trials that were RUNNING before asking new ones, so no trial appears twice.  The whole run holds the
study's driver lock (`harma.tune.lock`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harma.atomic import make_private_dirs, remove_debris
from harma.results.schema import StudyColumns, record_from_row
from harma.results.store import ResultsStore
from harma.schedulers.base import is_early_stopping, observations_from_epochs
from harma.results.trials import (COMPLETE, FAILED, FINISHED, OBSERVED, PRUNED, RUNNING, best_first, complete_count,
                                  importances_withheld, row_overrides)
from harma.study.columns import epoch_objective, objective_column, study_columns
from harma.terms import SEED_KEY

from harma.tune.lock import StudyLock
from harma.tune.outcome import DEFAULT_MAX_RETRIES, SigtermUnwinds, StopWatch
from harma.tune.quiet import library_output, silent_reporter, tune_loggers
from harma.tune.watchers import Watch, study_began, watch_sinks
from harma.errors import is_curable
from harma.tune.records import TRIAL_KEY, TrialSpec, provenance
from harma.study.fresh import check_fresh
from harma.study.snapshot import save_study_snapshot
from harma.study.model import Study
from harma.study.parse import load_study
from harma.errors import StudyError
from harma.study.warm_start import plan_warm_start
from harma.progress.events import StudyEnded

if TYPE_CHECKING:
    from harma.tune.events import EventRelay

OPTUNA_STATES = {"COMPLETE": COMPLETE, "PRUNED": PRUNED, "FAIL": FAILED}   # Optuna TrialState name -> status
DRIVER_MEMORY_BYTES = 1024 * 1024


def columns_for(study: Study, store: ResultsStore) -> StudyColumns:
    """The study's results columns (a replicate's include the parameter columns of its source study)."""
    source = store.param_kinds(study.replicate.source) if study.kind == "replicate" else None
    return study_columns(study, source)


def _fixed_trials(study: Study, store: ResultsStore) -> list[TrialSpec]:
    """Ablation: every (arm, seed); replicate: top-k of the source search for every seed."""
    if study.kind == "ablation":
        return [TrialSpec(f"{arm}-s{seed}", seed, overrides, arm=arm)
                for arm, seed, overrides in study.trial_overrides()]
    done = best_first(store.read_trials(study.replicate.source))
    if len(done) == 0:
        raise StudyError(f"{study.source}: replicate.from: study {study.replicate.source!r} has no {COMPLETE} "
                         f"trials under {store.root}")
    candidates = [(row["trial_id"], row_overrides(row, skip=(SEED_KEY,))) for row in done.to_dict("records")]
    return [TrialSpec(f"{label}-s{seed}", seed, overrides, arm=label)
            for label, seed, overrides in study.replicate_overrides(candidates)]


def _finished_ids(trials) -> set[str]:
    return set(trials.loc[trials["status"].isin(FINISHED), "trial_id"]) if len(trials) else set()


def _retry_ids(trials) -> set[str]:
    """FAILED trials whose error a rerun may cure (a killed worker, not a NaN), by the error's recorded class:
    `resume` runs them again."""
    if not len(trials):
        return set()
    failed = trials[trials["status"] == FAILED]
    return {row["trial_id"] for row in failed.to_dict("records") if is_curable(row.get("error_type"))}


def _check_new(study: Study, store: ResultsStore, checkpoints: str) -> None:
    """A new study must not have results, nor (locally) checkpoints an earlier run of its name left behind."""
    check_fresh(study)
    if not study.storage_is_remote:
        _check_no_stale_runs(study, checkpoints)


def _check_no_stale_runs(study: Study, checkpoints: str) -> None:
    """A new study must not silently resume checkpoints an earlier run of the same name left behind."""
    folder = Path(checkpoints) / study.name
    if folder.is_dir() and any(folder.iterdir()):
        raise StudyError(f"{study.source}: name: {folder} holds trial checkpoints of an earlier run of study "
                         f"{study.name!r} whose results are gone; delete that folder to start over, or give the "
                         "study a new name")


def _reconcile_with_optuna(study: Study, store: ResultsStore, columns: StudyColumns) -> None:
    """A driver killed between telling Optuna and writing Parquet leaves a RUNNING row for a finished trial:
    take the final state from Optuna.  One killed before telling Optuna (a deterministic study tells in trial
    order, later) leaves a RUNNING Optuna trial for a finished row: tell Optuna what Parquet recorded."""
    from harma.tune.searcher import latest_states, open_optuna_study, tell_recorded

    optuna_study = open_optuna_study(study)
    states = latest_states(optuna_study.get_trials(deepcopy=False))
    trials = store.read_trials(study.name)
    running = trials[trials["status"] == RUNNING] if len(trials) else trials
    for row in running.to_dict("records"):
        state = OPTUNA_STATES.get(states.get(row["trial_id"], ""))
        if state:
            store.write_trial({**record_from_row(row), "status": state}, columns)
    if len(trials):                          # ... and the other way: finished in Parquet, not yet told
        tell_recorded(optuna_study, trials.to_dict("records"), _curves(study, store), columns.objective)


def _curves(study: Study, store: ResultsStore) -> dict[str, dict[int, float]]:
    """{trial id: {epoch: the objective on its split}} from the epochs table."""
    curves: dict[str, dict[int, float]] = {}
    for seen in observations_from_epochs(store.read_epochs(study.name), study.objective.metric,
                                         study.objective.split):
        curves.setdefault(seen.trial_id, {})[seen.epoch] = seen.value
    return curves


def _report_importances(study: Study, store: ResultsStore, echo: Callable[..., None]) -> None:
    """Record the search's importances (whatever the count: the table says how many trials are behind them) and
    echo them from MIN_IMPORTANCE_TRIALS COMPLETE trials on, as `harma study status` and the report do."""
    from harma.tune.importance import record_importances

    result = record_importances(study, store)
    withheld = importances_withheld(complete_count(store.read_trials(study.name)))
    if withheld is not None:
        echo(f"[{study.name}] parameter importances: {withheld}", flush=True)
        return
    shown = ", ".join(f"{k} {v:.2f}" for k, v in sorted(result.importances.items(), key=lambda kv: -kv[1])[:5])
    echo(f"[{study.name}] parameter importances over {result.n_trials} COMPLETE trials: "
         f"{shown or 'none (' + str(result.reason) + ')'}", flush=True)


def _scheduler(study: Study, store: ResultsStore, resume: bool):
    """The study's Tune scheduler; on resume its state is rebuilt from the epochs table (harma.tune.scheduler)."""
    from harma.tune.scheduler import tune_scheduler

    epochs = store.read_epochs(study.name) if resume and is_early_stopping(study.scheduler) else None
    return tune_scheduler(study, epochs)


def _trial_resources(study: Study) -> dict[str, float]:
    res = study.resources
    if res.workers_per_trial == 1:
        wanted = {"cpu": res.cpus_per_worker, "gpu": res.gpus_per_trial}
    else:  # the trial only drives a TorchTrainer whose workers hold the CPUs/GPUs; Ray refuses an all-zero
        wanted = {"cpu": 0, "memory": DRIVER_MEMORY_BYTES}  # request, so the driver asks for a token of memory
    return {**{k: v for k, v in wanted.items() if v or k == "cpu"}, **res.custom}


def _storage_dirs(study: Study) -> tuple[str, str, str]:
    """(results root, trainer checkpoint root, Ray storage) for the study."""
    root = study.storage_path()
    if study.storage_is_remote:
        checkpoints = str(Path(os.path.expanduser("~/.harma/runs")))
    else:
        checkpoints = str(Path(root) / "runs")
    return root, checkpoints, root.rstrip("/") + "/ray"


def _best(store: ResultsStore, study: Study) -> tuple[float, str] | None:
    """(objective value, trial id) of the study's best COMPLETE or PRUNED trial in Parquet, every driver's."""
    ranked = best_first(store.read_trials(study.name), OBSERVED)
    return (float(ranked.iloc[0][objective_column(study)]), ranked.iloc[0]["trial_id"]) if len(ranked) else None


def _status_counts(store: ResultsStore, study: Study) -> dict[str, int]:
    trials = store.read_trials(study.name)
    return {str(k): int(v) for k, v in trials["status"].value_counts().items()} if len(trials) else {}


class _NoTunerRestoreHint:
    """Drops Ray Tune's "resume with Tuner.restore(...)" hint: a harma study resumes with `harma study resume`."""

    def filter(self, record) -> bool:
        return "Tuner.restore" not in record.getMessage()


def run_study(study_or_path: Study | str, address: str | None = None, resume: bool = False,
              echo: Callable[..., None] = print, max_retries: int = DEFAULT_MAX_RETRIES,
              watch: Watch = Watch()) -> dict[str, Any]:
    """Run (or resume) a study to the end, holding its driver lock; returns {"started": n, "finished_before":
    ids, "planned": trials in the study, "counts": {status: n} from Parquet at the end, "interrupted": SIGINT
    arrived, ...}.  A trial whose worker dies is retried from its checkpoint up to `max_retries` times.  `watch`
    says who sees the trials' epochs as they happen (harma.tune.watchers) and whether Ray's and Optuna's own
    logs show (harma.tune.quiet)."""
    study = study_or_path if isinstance(study_or_path, Study) else load_study(study_or_path)
    root = study.storage_path()
    with StudyLock(root, study.name) as lock:
        if lock.stale is not None:
            echo(f"[{study.name}] took over the lock of a driver that is gone ({lock.stale.describe()})",
                 flush=True)
        return _run_locked(study, address, resume, echo, max_retries, watch)


def _run_locked(study: Study, address: str | None, resume: bool, echo: Callable[..., None],
                max_retries: int, watch: Watch) -> dict[str, Any]:
    import ray

    from harma.tune.cluster import connect

    root, checkpoints, ray_storage = _storage_dirs(study)
    store = ResultsStore(root)
    columns = columns_for(study, store)
    if not resume:
        _check_new(study, store, checkpoints)
    warm = plan_warm_start(study, store) if study.kind == "search" and not resume else []
    # Every refusal above writes nothing: the snapshot, cleanup and folders come only now.
    save_study_snapshot(study, resume)
    if resume:
        rewritten = store.conform(columns)
        if rewritten:
            echo(f"[{study.name}] rewrote {len(rewritten)} results file(s) in schema of this study", flush=True)
    removed = store.remove_debris(study.name)
    if not study.storage_is_remote:
        removed += remove_debris(Path(checkpoints) / study.name)
        for folder in (checkpoints, ray_storage):
            make_private_dirs(folder)                 # before Ray and the trainer create them 0755
    if removed:
        echo(f"[{study.name}] removed {len(removed)} temporary file(s) left by a killed write", flush=True)
    recorded = store.read_trials(study.name)
    retry = _retry_ids(recorded) if resume else set()
    finished = _finished_ids(recorded) - retry
    with SigtermUnwinds() as sigterm, library_output(watch.verbose):
        started_ray = connect(study, address, verbose=watch.verbose)
        sigterm.install()                              # ray.init put its own SIGTERM handler in place
        try:
            return _run_connected(study, store, columns, resume, finished, retry, warm,
                                  (root, checkpoints, ray_storage), echo, max_retries, watch)
        finally:
            if started_ray:
                ray.shutdown()


def _run_connected(study: Study, store: ResultsStore, columns: StudyColumns, resume: bool, finished: set[str],
                   retry: set[str], warm: list, dirs: tuple[str, str, str], echo: Callable[..., None],
                   max_retries: int, watch: Watch) -> dict[str, Any]:
    from harma.tune.cluster import check_fits, cluster_shape, derive_max_concurrent

    root, checkpoints, ray_storage = dirs
    shape = cluster_shape()
    check_fits(study, shape)
    concurrency = derive_max_concurrent(study, shape)
    plan = _plan(study, store, columns, resume, finished, retry, warm, echo, concurrency)
    if retry:
        echo(f"[{study.name}] retrying {len(retry)} FAILED trial(s) whose error a rerun may cure: "
             + ", ".join(sorted(retry)), flush=True)
    echo(f"[{study.name}] {study.kind} study: {plan.total} trial(s) to run, {len(finished)} already finished, "
         f"up to {concurrency} at once on {shape.nodes} node(s); results in {root}", flush=True)
    trials = store.read_trials(study.name)
    summary = {"name": study.name, "started": plan.total, "finished_before": sorted(finished), "results": root,
               "planned": plan.total + len(_finished_ids(trials) - retry)}
    if plan.total == 0:
        return {**summary, "best": _best(store, study), "counts": _status_counts(store, study), "interrupted": None}
    from harma.tune.events import EventRelay

    relay = EventRelay(study, watch_sinks(study, watch, checkpoints, echo), echo)
    relay.send(study_began(study, trials, finished, plan.total, concurrency))
    interrupted = None
    try:
        _, interrupted = _fit(study, store, columns, plan, concurrency, finished, max_retries, resume,
                                     (checkpoints, ray_storage), echo, relay, watch.verbose)
    finally:
        relay.send(StudyEnded(time.time(), interrupted))
        relay.close()
    if study.kind == "search" and not interrupted:
        _report_importances(study, store, echo)
    return {**summary, "best": _best(store, study), "counts": _status_counts(store, study), "interrupted": interrupted}


@dataclass(frozen=True)
class _TrialFolder:
    """Tune's name and folder of a trial: its harma trial id, not the repr of its config.  A searcher's trial
    carries its TrialSpec; a grid's (ablation, replicate) still holds Tune's placeholder for it when the trial is
    named, so its id comes from its grid position, the number its experiment tag starts with."""
    grid: tuple[str, ...] = ()

    def __call__(self, trial) -> str:
        value = trial.config.get(TRIAL_KEY)
        if isinstance(value, TrialSpec):
            return value.trial_id
        index = str(trial.experiment_tag).split("_", 1)[0]
        return self.grid[int(index)] if index.isdigit() and int(index) < len(self.grid) else str(trial.trial_id)


@dataclass
class _Plan:
    searcher: Any
    param_space: dict
    num_samples: int
    total: int
    grid: tuple[str, ...] = ()          # the trial ids of a grid, in its order


def _plan(study: Study, store: ResultsStore, columns: StudyColumns, resume: bool, finished: set[str],
          retry: set[str], warm: list, echo: Callable[..., None], concurrency: int = 1) -> _Plan:
    """What this run starts: Optuna's trials for a search, the unfinished (arm, seed) grid otherwise."""
    from ray import tune

    from harma.tune.searcher import OptunaAskTellSearcher, enqueue_warm

    if study.kind == "search":
        if resume:
            _reconcile_with_optuna(study, store, columns)
        searcher = OptunaAskTellSearcher(study, epoch_objective(study), resume_unfinished=resume, retry=retry,
                                         concurrency=concurrency)
        if warm:
            enqueue_warm(searcher.optuna_study, warm)
            echo(f"[{study.name}] warm start: the first {len(warm)} trial(s) take the parameters of "
                 + ", ".join(t.source for t in warm), flush=True)
        return _Plan(searcher, {}, searcher.total, searcher.total)
    planned = [t for t in _fixed_trials(study, store) if t.trial_id not in finished]
    return _Plan(None, {TRIAL_KEY: tune.grid_search(planned)}, 1 if planned else 0, len(planned),
                 tuple(t.trial_id for t in planned))


def _tuner(study: Study, store: ResultsStore, plan: _Plan, concurrency: int, resume: bool, callbacks: list,
           max_retries: int, dirs: tuple[str, str], verbose: bool):
    """The Tune experiment: single-worker trials reuse their actors (warm workers: torch, open_clip and the
    frozen backbone stay loaded; harma.train resets every per-trial state); a DDP trial's actor only drives a
    TorchTrainer and is not reused.  Tune's trial folders are named after the harma trial id."""
    from ray import tune

    from harma.tune.trial import run_trial

    checkpoints, ray_storage = dirs
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, study=study, checkpoint_root=checkpoints, train_storage=ray_storage),
        _trial_resources(study))
    return tune.Tuner(
        trainable, param_space=plan.param_space,
        tune_config=tune.TuneConfig(search_alg=plan.searcher, scheduler=_scheduler(study, store, resume),
                                    num_samples=plan.num_samples, max_concurrent_trials=concurrency,
                                    reuse_actors=study.resources.workers_per_trial == 1,
                                    trial_dirname_creator=_TrialFolder(plan.grid),
                                    trial_name_creator=_TrialFolder(plan.grid)),
        run_config=tune.RunConfig(name=f"{study.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                  storage_path=ray_storage, callbacks=[*callbacks, *tune_loggers()], verbose=0,
                                  progress_reporter=None if verbose else silent_reporter(),
                                  failure_config=tune.FailureConfig(max_failures=max_retries)))


def _fit(study: Study, store: ResultsStore, columns: StudyColumns, plan: _Plan, concurrency: int,
         finished: set[str], max_retries: int, resume: bool, dirs: tuple[str, str], echo: Callable[..., None],
         relay: "EventRelay", verbose: bool):
    """Fit one Tune experiment over the plan, the Parquet callback first, then the relay of epoch events to the
    watchers; returns (the Parquet callback, the signal that stopped it or None)."""
    import logging

    from harma.tune.callbacks import ParquetResults

    callback = ParquetResults(study, store, columns, provenance(), dirs[0], plan.total, echo=echo,
                              protected=finished, max_retries=max_retries)
    hint = _NoTunerRestoreHint()
    tune_logger = logging.getLogger("ray.tune.tune")
    tune_logger.addFilter(hint)
    try:
        with StopWatch() as stop:
            _tuner(study, store, plan, concurrency, resume, [callback, relay], max_retries, dirs, verbose).fit()
            return callback, stop.interruption()
    finally:
        tune_logger.removeFilter(hint)
