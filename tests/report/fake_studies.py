"""Fake studies written through ResultsStore for the report tests: an ablation (3 arms × 3 seeds, plus a
FAILED and a RUNNING trial, one arm name and one error message full of HTML), a search (10 trials, COMPLETE,
PRUNED and FAILED, with an Optuna sqlite storage holding the same trials) and a replicate (1 arm × 3 seeds).
Numbers are deterministic so pages can be compared byte for byte.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np

from harma.metrics import METRIC_KEYS

from harma.results.store import ResultsStore

from harma.results.schema import StudyColumns

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 6, 1, tzinfo=UTC)
EVIL_ARM = "<b>mm&only</b>"
EVIL_ERROR = "CUDA OOM <script>alert('x')</script> & more"
ARM_EFFECT = {"harma": 0.0, "no_bishare": -1.5, EVIL_ARM: -3.0}
EPOCHS = 5


def metrics(center: float, rng: np.random.Generator) -> dict[str, float]:
    vals = {m: center + rng.normal(0, 1) + (k - 3) * 4 for k, m in enumerate(METRIC_KEYS[:-1])}
    vals["r_mean"] = float(np.mean(list(vals.values())))
    return vals


def trial_record(study: str, trial_id: str, kind: str, status: str, i: int, val: dict | None, test: dict | None,
                 **extra) -> dict:
    rec = {"study": study, "trial_id": trial_id, "kind": kind, "status": status,
           "started_at": T0 + dt.timedelta(minutes=10 * i),
           "finished_at": None if status == "RUNNING" else T0 + dt.timedelta(minutes=10 * i + 55),
           "trainable_params": 5_934_397, "total_params": 157_000_000, "wall_seconds": 3300.0,
           "gpu_seconds": 3300.0 + 60 * i, "peak_gpu_bytes": 9 * 2**30, "git_commit": "deadbeef",
           "package_versions": {"torch": "2.4"}, "host": "node", "node_id": "n0"}
    for split, values in (("val", val), ("test", test)):
        for m in METRIC_KEYS:
            rec[f"{split}_{m}"] = None if values is None else values[m]
    rec.update(extra)
    return rec


def curve(final: float, epochs: int) -> list[float]:
    return [final - 8.0 * math.exp(-0.7 * e) for e in range(1, epochs + 1)]


def write_epochs(store: ResultsStore, study: str, trial_id: str, final: float, epochs: int) -> None:
    for e, v in enumerate(curve(final, epochs), start=1):
        store.write_epoch(study, trial_id, e, {"val": {"r_mean": v, "txt_r1": v - 10},
                                               "train": {"loss": 2.0 / e, "lr": 1e-4}}, seconds=60.0 + e)


def write_ablation(store: ResultsStore, study: str = "abl", kind: str = "ablation",
                   arms: dict[str, float] = ARM_EFFECT, seeds: tuple[int, ...] = (0, 1, 2),
                   extra_trials: bool = True) -> None:
    rng = np.random.default_rng(0)
    columns = StudyColumns(study, {"adapter.share": "string", "train.seed": "int"})
    i = 0
    for arm, effect in arms.items():
        for seed in seeds:
            val, test = metrics(40 + effect, rng), metrics(38 + effect, rng)
            tid = f"{kind[:3]}_{i:05d}"
            store.write_trial(trial_record(study, tid, kind, "COMPLETE", i, val, test, arm=arm, seed=seed,
                                           stop_epoch=EPOCHS, best_epoch=EPOCHS - 1,
                                           params={"adapter.share": arm, "train.seed": seed}), columns)
            write_epochs(store, study, tid, val["r_mean"], EPOCHS)
            i += 1
    if extra_trials:
        store.write_trial(trial_record(study, f"{kind[:3]}_{i:05d}", kind, "FAILED", i, None, None,
                                       arm="harma", seed=3, error=EVIL_ERROR, params={"train.seed": 3}), columns)
        store.write_trial(trial_record(study, f"{kind[:3]}_{i + 1:05d}", kind, "RUNNING", i + 1, None, None,
                                       arm="no_bishare", seed=3, params={"train.seed": 3}), columns)
        write_epochs(store, study, f"{kind[:3]}_{i + 1:05d}", 30.0, 2)


SEARCH_TRIALS = [
    # bottleneck, gamma, lr, share, status, stop_epoch
    (64, 1.5, 1e-4, "bishare", "COMPLETE", 8), (32, 0.5, 3e-5, "mm", "PRUNED", 2),
    (128, 2.0, 5e-4, "bishare", "COMPLETE", 8), (16, 1.0, 1e-5, "mm", "PRUNED", 2),
    (64, 2.5, 2e-4, "bishare", "COMPLETE", 8), (32, 1.2, 8e-5, "none", "PRUNED", 4),
    (128, 0.8, 1e-3, "mm", "FAILED", 1), (64, 1.8, 1.5e-4, "bishare", "COMPLETE", 8),
    (16, 3.0, 6e-4, "none", "COMPLETE", 8), (128, 1.4, 2.5e-4, "bishare", "COMPLETE", 8),
]


SEARCH_PARAMS = {"adapter.bottleneck": "int", "loss.gamma": "float", "optim.lr": "float", "adapter.share": "string",
                 "data.dataset": "string"}


def search_score(bottleneck: int, gamma: float, lr: float, share: str) -> float:
    return 30 + 2 * math.log2(bottleneck / 16) - 2 * (gamma - 1.6) ** 2 - 3 * abs(math.log10(lr / 2e-4)) + (
        2 if share == "bishare" else 0)


def write_search(store: ResultsStore, study: str = "srch", optuna_db: str | None = None, gpus: float = 1.0,
                 objective: tuple[str, str] = ("val_r_mean", "max")) -> None:
    rng = np.random.default_rng(1)
    columns = StudyColumns(study, SEARCH_PARAMS, *objective)
    for i, (b, g, lr, share, status, stop) in enumerate(SEARCH_TRIALS):
        score = search_score(b, g, lr, share)
        val = metrics(score, rng) if status != "FAILED" else None
        if val is not None:
            val["r_mean"] = score - (0 if status == "COMPLETE" else 4.0 * (8 - stop) / 8)
        test = metrics(score - 1, rng) if status == "COMPLETE" else None
        tid = f"srch_{i:05d}"
        store.write_trial(trial_record(
            study, tid, "search", status, i, val, test, seed=0, stop_epoch=stop, best_epoch=stop,
            trainable_params=int(5_934_397 * b / 128), gpu_seconds=gpus * stop * (300.0 + 3.0 * b),
            error="worker died: <NCCL> timeout" if status == "FAILED" else None,
            params={"adapter.bottleneck": b, "loss.gamma": g, "optim.lr": lr, "adapter.share": share,
                    "data.dataset": "rsitmd"}), columns)
        if val is not None:
            write_epochs(store, study, tid, val["r_mean"], stop)
    if optuna_db is not None:
        write_optuna(study, optuna_db)


def write_optuna(study: str, storage_url) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(study_name=study, storage=storage_url, direction="maximize")
    dists = {"adapter.bottleneck": optuna.distributions.CategoricalDistribution([16, 32, 64, 128]),
             "loss.gamma": optuna.distributions.FloatDistribution(0.5, 3.0),
             "optim.lr": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True),
             "adapter.share": optuna.distributions.CategoricalDistribution(["bishare", "mm", "none"])}
    for b, g, lr, share, status, _ in SEARCH_TRIALS:
        params = {"adapter.bottleneck": b, "loss.gamma": g, "optim.lr": lr, "adapter.share": share}
        state = {"COMPLETE": optuna.trial.TrialState.COMPLETE, "PRUNED": optuna.trial.TrialState.PRUNED,
                 "FAILED": optuna.trial.TrialState.FAIL}[status]
        value = search_score(b, g, lr, share) if status == "COMPLETE" else None
        s.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value, state=state))


def write_all(root, optuna_db: str | None = None) -> ResultsStore:
    store = ResultsStore(root)
    write_ablation(store)
    write_search(store, optuna_db=optuna_db)
    write_ablation(store, "rep", "replicate", {"harma": 0.0}, extra_trials=False)
    return store
