"""TensorBoard event files per trial, written by the study driver from the epoch events (tensorboardX's writer).

Each trial gets `<results root>/tensorboard/<study>/<trial id>/` (`~/.harma/tensorboard/<study>/` when results go
to an object store): at its start the HParams plugin's experiment and session-start records (its dotted
overrides, `train.seed` and its `arm` included, and the metric `best/<objective column>`), at every epoch a
scalar per curve of the epochs table under `<split>/<metric>` (`val/r_mean`, `test/r1_i2t`, `train/loss_contr`,
`train/lr`) and `best/<objective column>` (the objective at the best epoch so far, what the HParams table and
its parallel-coordinates view compare), and at its end the session-end record (success for COMPLETE and PRUNED,
failure for FAILED).  An epoch a retried trial reports again is written once; a trial resumed by a later
driver starts its run over (tensorboardX's `purge_step=1`) and its replayed epochs rewrite it.  tensorboardX is
loaded with torch hidden (`_load_tensorboardx`): its writer imports torch, when it can, only to accept torch
tensors, which harma never passes, and torch would cost the study driver about 1 GiB.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

from harma.progress.events import EpochReported, Event, StudyBegan, StudyEnded, TrialEnded, TrialStarted

FAILED = "FAILED"


def _load_tensorboardx() -> None:
    """Import tensorboardX without torch: while it loads, `import torch` raises ImportError (unless torch is
    loaded already), which tensorboardX's writer takes as "no torch"."""
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None                 # type: ignore[assignment]
    try:
        import tensorboardX  # noqa: F401
    finally:
        del sys.modules["torch"]


def tensorboard_root(storage_path: str, remote: bool, study: str) -> Path:
    """The folder of a study's TensorBoard runs (one sub-folder per trial)."""
    base = Path(os.path.expanduser("~/.harma")) if remote else Path(storage_path)
    return base / "tensorboard" / study


def best_tag(objective: str) -> str:
    """`best/val_r_mean`: the objective at the trial's best epoch so far (the HParams plugin's metric)."""
    return f"best/{objective}"


def hparam_values(params: Mapping[str, Any], arm: str | None) -> dict[str, Any]:
    """The trial's overrides as HParams values (numbers, strings, booleans; anything else as its text)."""
    values = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in params.items()
              if v is not None}
    return {**values, "arm": arm} if arm else values


def _session_end(status: str):
    """The HParams session-end summary: success for COMPLETE and PRUNED, failure for FAILED."""
    _load_tensorboardx()
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    info = SessionEndInfo(status=Status.Value("STATUS_FAILURE" if status == FAILED else "STATUS_SUCCESS"))
    content = HParamsPluginData(session_end_info=info, version=0).SerializeToString()
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=content))
    return Summary(value=[Summary.Value(tag="_hparams_/session_end_info", metadata=meta)])


class TensorBoardSink:
    """Writes one TensorBoard run per trial under `folder` from a driver's events."""
    name = "tensorboard"

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.objective = "objective"
        self.writers: dict[str, Any] = {}
        self.written: dict[str, int] = {}

    def handle(self, event: Event) -> None:
        if isinstance(event, StudyBegan):
            self.objective = event.objective
        elif isinstance(event, TrialStarted):
            self._open(event)
        elif isinstance(event, EpochReported):
            self._epoch(event)
        elif isinstance(event, TrialEnded):
            self._end(event)
        elif isinstance(event, StudyEnded):
            self.close()

    def _open(self, event: TrialStarted) -> None:
        _load_tensorboardx()
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams

        if event.trial_id in self.writers:          # Tune restarted the trial: keep writing its run
            return
        logdir = self.folder / event.trial_id
        again = logdir.is_dir() and any(logdir.iterdir())
        writer = SummaryWriter(logdir=str(logdir), purge_step=1 if again else None)
        experiment, start, _ = hparams(hparam_values(event.params, event.arm), {best_tag(self.objective): 0.0})
        writer.file_writer.add_summary(experiment)
        writer.file_writer.add_summary(start)
        writer.flush()
        self.writers[event.trial_id], self.written[event.trial_id] = writer, 0

    def _epoch(self, event: EpochReported) -> None:
        writer = self.writers.get(event.trial_id)
        if writer is None or event.epoch <= self.written[event.trial_id]:
            return
        for split, metrics in event.curves.items():
            for metric, value in sorted(metrics.items()):
                writer.add_scalar(f"{split}/{metric}", value, event.epoch)
        if event.best is not None:
            writer.add_scalar(best_tag(self.objective), event.best, event.epoch)
        writer.flush()
        self.written[event.trial_id] = event.epoch

    def _end(self, event: TrialEnded) -> None:
        writer = self.writers.pop(event.trial_id, None)
        if writer is not None:
            writer.file_writer.add_summary(_session_end(event.status))
            writer.close()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
