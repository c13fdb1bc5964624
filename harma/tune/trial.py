"""One Ray Tune trial: a small driver that runs the HarMA trainer for one config.

With one worker the trainer runs in the trial process itself (no worker-group start-up cost) on the GPU Ray
assigned it, within its share of that GPU's memory when trials are packed (`harma.tune.packing`); with
`workers_per_trial > 1` the trial builds and fits a Ray Train `TorchTrainer` (DDP, NCCL on GPU, gloo on CPU)
whose run name derives from the harma trial id, so a restarted driver resumes it, and whose metrics reach Tune
through a relay that holds the workers until Tune continues the trial (`harma.tune.relay`); that driver itself
never touches CUDA.  Loader workers fit the trial's CPUs unless the study sets them.  Either way the trainer
checkpoints into `<storage>/runs/<study>/<trial id>` before it reports an epoch, so the report that Tune stops
a trial on always finds that epoch's weights on disk; after a restart (a Tune retry of a killed worker, or
`harma study resume`) it resumes from there and first reports again the epochs it already holds.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from harma.config import RunConfig, planned_epochs
from harma.errors import HarmaError
from harma.study.columns import epoch_objective
from harma.tune.packing import gpu_share, loader_workers
from harma.tune.records import TrialSpec, epoch_result, failure_result, trial_spec

from harma.tune.relay import Relay
from harma.study.model import Study


def trial_run_config(study: Study, trial: TrialSpec, checkpoint_root: str) -> RunConfig:
    """The study's base config + this trial's overrides, writing into the trial's own folder; loader workers
    fit `resources.cpus_per_worker`, and a GPU trial runs `train.compile=auto` (CUDA graphs), unless the study
    (its `base.set` or this trial) sets `data.num_workers` / `train.compile`."""
    out_dir = str(Path(checkpoint_root) / study.name / trial.trial_id)
    device = "cuda" if study.resources.gpus_per_trial > 0 else "cpu"
    fitted = {}
    if "data.num_workers" not in study.base_set and "data.num_workers" not in trial.overrides:
        fitted["data.num_workers"] = loader_workers(study.resources.cpus_per_worker)
    if device == "cuda" and "train.compile" not in study.base_set and "train.compile" not in trial.overrides:
        fitted["train.compile"] = "auto"
    return study.run_config({**fitted, **trial.overrides, "train.out_dir": out_dir, "train.device": device,
                             "train.resume": True})


def _where() -> dict[str, Any]:
    import ray

    return {"host": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid()}


def run_trial(config: dict, study: Study, checkpoint_root: str, train_storage: str) -> None:
    """Tune function trainable: `config[TRIAL_KEY]` is the TrialSpec to run.

    A harma error that a rerun cannot cure (a non-finite loss, a bad config, an unreadable checkpoint) is
    reported as the trial's last result (`failure_result`), so Tune's retries, meant for killed workers,
    never rerun it; any other error propagates to Tune, which may retry it."""
    from ray import tune

    spec = trial_spec(config)
    cfg = trial_run_config(study, spec, checkpoint_root)
    try:
        if study.resources.workers_per_trial == 1:
            _train_in_process(cfg, study.resources.gpus_per_trial)
        else:
            _train_with_torch_trainer(cfg, study, spec.trial_id, train_storage)
    except HarmaError as exc:
        if exc.curable:
            raise
        tune.report(failure_result(exc, epoch_objective(study)))


def _train_in_process(cfg: RunConfig, gpus_per_trial: float = 0.0) -> None:
    """Tune's function reporting is synchronous: `tune.report` returns only when Tune continues the trial,
    and the trainer has written the epoch's checkpoint before it reports.  A fractional GPU caps this
    process's GPU memory at that share (an out-of-memory inside it is a GpuShareError, never retried)."""
    from ray import tune

    from harma.train import train

    where, planned = _where(), planned_epochs(cfg)
    with gpu_share(gpus_per_trial, cfg.train.device):
        train(cfg, report=lambda record: tune.report(epoch_result(record, planned, where)), replay=True)



def _worker_loop(loop_config: dict) -> None:
    """Runs on every Ray Train worker (the process group is up).  Rank 0 hands each epoch's result to the trial
    driver through the relay and waits for Tune's go-ahead; the other ranks wait for it at the trainer's
    barrier, so no worker trains an epoch past one that Tune stopped the trial on."""
    import ray.train
    import ray.train.torch

    from harma.config import apply_overrides
    from harma.train import train

    cfg: RunConfig = loop_config["cfg"]
    relay: Relay = loop_config["relay"]
    device = ray.train.torch.get_device()
    if device.type == "cuda":
        cfg = apply_overrides(cfg, {"train.device": f"cuda:{device.index or 0}"})
    where, planned = _where(), planned_epochs(cfg)
    try:
        train(cfg, report=lambda record: relay.report(epoch_result(record, planned, where)), replay=True)
    except HarmaError as exc:
        # Deterministic errors hit every rank alike (the same global loss, the same files); rank 0 hands the
        # failure to the trial driver, which reports it once and ends the trial.
        if exc.curable:
            raise
        if ray.train.get_context().get_world_rank() == 0:
            relay.fail(failure_result(exc, loop_config["metric"]))


def _train_with_torch_trainer(cfg: RunConfig, study: Study, trial_id: str, train_storage: str) -> None:
    """Fit a TorchTrainer in a background thread while this (the trial's) thread relays its results to Tune."""
    from ray.train import FailureConfig, ScalingConfig
    from ray.train import RunConfig as TrainRunConfig
    from ray.train.torch import TorchTrainer

    res = study.resources
    relay = Relay()
    per_worker = {"CPU": res.cpus_per_worker}
    if res.gpus_per_worker > 0:
        per_worker["GPU"] = res.gpus_per_worker
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"cfg": cfg, "relay": relay, "metric": epoch_objective(study)},
        scaling_config=ScalingConfig(num_workers=res.workers_per_trial, use_gpu=res.gpus_per_worker > 0,
                                     resources_per_worker=per_worker),
        run_config=TrainRunConfig(name=f"{study.name}-{trial_id}", storage_path=train_storage,
                                  failure_config=FailureConfig(max_failures=2)),
    )
    relay.serve(trainer.fit)
