"""The Ray-free HarMA trainer: `train(cfg, report=callback) -> TrainSummary`.

Read `train` top to bottom: set up the process (device, TF32, DDP when launched by torchrun, seed, output
folder), build the model and data, get the epochs' runner (`harma.train_epochs`: it trains the model, or for a
frozen model, `adapter.towers=none`, runs one epoch that trains nothing) and the val and test evaluators (built
once: their loaders and compiled encoders serve every epoch), resume from `last.pt`, then for each epoch: train,
evaluate val and test (the seconds torch spent compiling in the epoch recorded apart, and counted in it), keep
the best epoch by the val objective in an `EpochRecord`, save small atomic checkpoints, append the record to
`log.jsonl` and only then call `report(record)`: a report always finds its epoch's weights on disk.  A NaN/inf
loss or val objective stops the run with an error naming the epoch.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from harma import compiled
from harma import distributed as dist_utils
from harma import runtime
from harma.atomic import make_private_dirs, remove_debris
from harma.checkpoint import load_checkpoint, load_trainable, save_atomic, trainable_state
from harma.config import ConfigError, RunConfig, load_config, resume_conflicts, save_config, write_text_atomic
from harma.epoch_record import EpochRecord, TrainSummary
from harma.evaluate import Encoders, SplitEvaluator
from harma.model.build import HarmaModel, build_model, tokenizer_for
from harma.train_epochs import EpochRunner, EpochStats, Process, epoch_runner
from harma.train_step import NonFiniteError

if TYPE_CHECKING:
    from harma.data.datasets import DataSets

__all__ = ["NonFiniteError", "train"]

ReportFn = Callable[[EpochRecord], None]


def _setup(cfg: RunConfig) -> Process:
    """Device and TF32, the DDP group (under torchrun), the seed; rank 0 prepares the output folder."""
    device = runtime.start(cfg.train)
    runtime.reset_process_state(device)     # a reused trial process: nothing of the last trial carries over
    compiled.begin_run(compiled.run_shapes(cfg, device))
    distributed = dist_utils.init_from_env(device)
    proc = Process(device, distributed, dist_utils.world_size(), dist_utils.rank())
    runtime.seed_everything(cfg.train.seed)
    out_dir = Path(cfg.train.out_dir)
    _check_same_run(out_dir, cfg)
    if proc.rank == 0:
        make_private_dirs(out_dir)
        remove_debris(out_dir)              # temporary files of a write killed with an earlier run
        save_config(cfg, out_dir / "config.yaml")
    return proc


def _check_same_run(out_dir: Path, cfg: RunConfig) -> None:
    """Resuming continues the run in `out_dir` only when it is the same run (RESUME_FREE_KEYS may differ)."""
    saved = out_dir / "config.yaml"
    if not (cfg.train.resume and (out_dir / "last.pt").is_file() and saved.is_file()):
        return
    conflicts = resume_conflicts(load_config(str(saved)), cfg)
    if conflicts:
        raise ConfigError(f"train.out_dir={str(out_dir)!r} holds a run with another config ({'; '.join(conflicts[:6])}"
                          f"{' ...' if len(conflicts) > 6 else ''}); use a new train.out_dir, or "
                          f"train.resume=false to start that folder over")


def _build(cfg: RunConfig, device: torch.device) -> tuple[HarmaModel, "DataSets"]:
    """(the model on `device`, the data sets); the affiliation loss needs scene labels in the train split."""
    from harma.data import build_datasets

    model = build_model(cfg).to(device)
    data = build_datasets(cfg.data, tokenizer_for(cfg))
    if cfg.loss.w_affil > 0 and data.n_classes == 0:
        raise ConfigError(f"loss.w_affil={cfg.loss.w_affil}: the affiliation loss needs scene labels, but the train "
                         f"annotations ({cfg.data.train_json or cfg.data.image_root}) have no `label` field")
    return model, data


def _resume(cfg: RunConfig, model: HarmaModel, runner: EpochRunner) -> list[EpochRecord]:
    """The history of `last.pt` (empty without one), its tensors, runner state and RNG loaded; rank 0 rewrites
    `log.jsonl` from that history, whatever a stop left after it."""
    last = Path(cfg.train.out_dir) / "last.pt"
    if not (cfg.train.resume and last.is_file()):
        return []
    ckpt = load_checkpoint(last)
    load_trainable(model, ckpt["trainable"], str(last))
    runner.load_state_dict(ckpt)
    torch.set_rng_state(ckpt["rng"]["torch"])
    history = [EpochRecord.from_dict(r) for r in ckpt["history"]]
    if dist_utils.is_main():
        write_text_atomic(Path(cfg.train.out_dir) / "log.jsonl",
                          "".join(json.dumps(r.to_dict()) + "\n" for r in history))
    return history


def _save(out_dir: Path, model: HarmaModel, runner: EpochRunner, history: list[EpochRecord]) -> None:
    """last.pt (tensors, runner state, history as plain dicts, RNG); best.pt when this epoch is the best."""
    last, trainable = history[-1], trainable_state(model)
    save_atomic({"trainable": trainable, **runner.state_dict(), "epoch": last.epoch,
                 "best_epoch": last.best_epoch, "best_val": last.best_val, "best_test": last.best_test,
                 "history": [r.to_dict() for r in history], "rng": {"torch": torch.get_rng_state()}},
                out_dir / "last.pt")
    if last.improved:
        save_atomic({"trainable": trainable, "epoch": last.epoch}, out_dir / "best.pt")


def _log_line(out_dir: Path, record: EpochRecord) -> None:
    with open(out_dir / "log.jsonl", "a") as fh:
        fh.write(json.dumps(record.to_dict()) + "\n")


def _check_finite_objective(val: dict[str, float], key: str, epoch: int) -> None:
    """A NaN or infinite objective cannot rank the epoch: the run stops, naming it (never retried)."""
    if not math.isfinite(val[key]):
        raise NonFiniteError(f"val {key} is {val[key]} at epoch {epoch}: the model's embeddings are not finite")


def _improves(val: dict[str, float], best: EpochRecord | None, cfg: RunConfig) -> bool:
    """The first epoch, or val[objective] strictly better (per objective_mode) than the best epoch's."""
    key, sign = cfg.train.objective, (1.0 if cfg.train.objective_mode == "max" else -1.0)
    return best is None or sign * val[key] > sign * best.best_val[key]


def _peak_memory(device: torch.device) -> dict[str, int | None]:
    """Peak resident memory of this process, and peak allocated GPU memory on CUDA (None otherwise)."""
    gpu = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    try:
        import resource
        rss = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except ImportError:  # pragma: no cover - non-POSIX
        rss = None
    return {"peak_rss_bytes": rss, "peak_gpu_bytes": gpu}


def _counts(model: HarmaModel) -> dict[str, int]:
    """{"trainable_params": numel of adapter_params(), "total_params": numel of all parameters}."""
    return {"trainable_params": sum(p.numel() for p in model.adapter_params().values()),
            "total_params": sum(p.numel() for p in model.parameters())}


class Evaluation:
    """The val and test evaluators of a run, built once (loaders with persistent workers, compiled encoders)."""

    def __init__(self, model: HarmaModel, data: "DataSets", cfg: RunConfig, device: torch.device) -> None:
        encoders = Encoders(model, cfg, device)
        self.val, self.test = SplitEvaluator(data.val, encoders, cfg), SplitEvaluator(data.test, encoders, cfg)
        self.mode = encoders.mode

    def close(self) -> None:
        """Stop both loaders' persistent workers."""
        self.val.close()
        self.test.close()


def _epoch(epoch: int, runner: EpochRunner, evaluation: Evaluation, model: HarmaModel, cfg: RunConfig,
           device: torch.device, previous: EpochRecord | None) -> EpochRecord:
    """Train one epoch, evaluate val and test, and record it with the best epoch so far."""
    t0, compiling = time.time(), compiled.compile_seconds()
    stats: EpochStats = runner.run(epoch)
    train_seconds = time.time() - t0
    val, test = evaluation.val.run(), evaluation.test.run()
    _check_finite_objective(val, cfg.train.objective, epoch)
    if _improves(val, previous, cfg):
        best_epoch, best_val, best_test = epoch, val, test
    else:
        best_epoch, best_val, best_test = previous.best_epoch, previous.best_val, previous.best_test
    return EpochRecord(epoch=epoch, val=val, test=test, train=stats.losses, lr=runner.lr(),
                       epoch_seconds=time.time() - t0, train_seconds=train_seconds,
                       images_per_s=stats.pairs / train_seconds if train_seconds > 0 else 0.0,
                       best_epoch=best_epoch, best_val=best_val, best_test=best_test, **_counts(model),
                       **_peak_memory(device), compile_seconds=compiled.compile_seconds() - compiling,
                       compile_notes=compiled.notes(evaluation.mode))


def _summary(history: list[EpochRecord], model: HarmaModel, proc: Process, cfg: RunConfig,
             started: float) -> TrainSummary:
    """The best-val epoch of the last record, with the run's counts, wall time, memory and history."""
    last = history[-1]
    return TrainSummary(best_epoch=last.best_epoch, best_val=last.best_val, test_at_best_val=last.best_test,
                        epochs_run=last.epoch, **_counts(model), wall_seconds=time.time() - started,
                        **_peak_memory(proc.device), world_size=proc.world, out_dir=str(Path(cfg.train.out_dir)),
                        history=tuple(history))


def train(cfg: RunConfig, report: ReportFn | None = None, report_on_all_ranks: bool = False,
          replay: bool = False) -> TrainSummary:
    """Train (or, for a frozen model, evaluate once) and return a summary of the best-val epoch.

    `report(record)` is called once per epoch on rank 0 (on every rank with `report_on_all_ranks`, as Ray
    Train needs) with the epoch's `EpochRecord`.  With `replay`, a resumed run first reports again every
    epoch its checkpoint holds (a study driver that died before writing an epoch's report gets it back, and a
    run whose checkpoint already holds every epoch still reports)."""
    started = time.time()
    proc = _setup(cfg)
    model, data = _build(cfg, proc.device)
    runner = epoch_runner(model, data.train, cfg, proc)
    evaluation = Evaluation(model, data, cfg, proc.device)
    history = _resume(cfg, model, runner)
    reports = report is not None and (proc.rank == 0 or report_on_all_ranks)
    if replay and reports:
        for record in history:
            report(record)

    try:
        _epochs(cfg, proc, model, runner, evaluation, history, report if reports else None)
    finally:                          # loader workers end with the run, even when Tune stops it in a report
        runner.close()
        evaluation.close()
    return _summary(history, model, proc, cfg, started)


def _epochs(cfg: RunConfig, proc: Process, model: HarmaModel, runner: EpochRunner, evaluation: Evaluation,
            history: list[EpochRecord], report: ReportFn | None) -> None:
    """Run the epochs after `history`'s last, appending each record: checkpoint first, then the log line, then
    the report, so whoever receives the report (Ray Tune, which may stop the trial on it) finds the epoch's
    weights on disk already.  A stop before the report loses nothing: a resumed run with `replay` reports every
    epoch its checkpoint holds again."""
    out_dir = Path(cfg.train.out_dir)
    for epoch in range((history[-1].epoch if history else 0) + 1, runner.epochs + 1):
        record = _epoch(epoch, runner, evaluation, model, cfg, proc.device, history[-1] if history else None)
        history.append(record)
        if proc.rank == 0:
            _save(out_dir, model, runner, history)
            _log_line(out_dir, record)
        dist_utils.barrier()
        if report is not None:
            report(record)
        dist_utils.barrier()
