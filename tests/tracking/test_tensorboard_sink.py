"""TensorBoard runs per trial from a driver's events, read back with TensorBoard's own EventAccumulator: every
epoch's curves under `<split>/<metric>` with the values reported, `best/<objective>`, the HParams plugin's
experiment, session start (the trial's overrides and arm) and session end (success, or failure for FAILED); an
epoch a retried trial reports again is written once, and a trial resumed by a later driver starts its run over."""
from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from harma.progress.events import EpochReported, StudyBegan, StudyEnded, TrialEnded, TrialStarted
from harma.tracking.tensorboard import TensorBoardSink

BEGAN = StudyBegan("st", "ablation", "val_r_mean", "max", 2, 2, 2, 3, False, 0.0)


def reported(tid: str, k: int, shift: float = 0.0) -> EpochReported:
    curves = {"val": {"r_mean": 20.0 + k + shift, "r1_i2t": 10.5 * k}, "test": {"r_mean": 18.25 + k},
              "train": {"loss": 2.0 / k, "loss_contr": 1.5 / k, "lr": 1e-3 * k}}
    return EpochReported(tid, k, 3, curves, 20.0 + k + shift, 20.0 + k + shift, 4.0, 10.0 + k)


def read(folder, tid: str) -> EventAccumulator:
    acc = EventAccumulator(str(folder / tid))
    acc.Reload()
    return acc


def hparams(acc: EventAccumulator) -> dict:
    return {tag: plugin_data_pb2.HParamsPluginData.FromString(content)
            for tag, content in acc.PluginTagToContent("hparams").items()}


def run(folder, epochs, status: str = "COMPLETE", arm: str | None = "harma") -> None:
    sink = TensorBoardSink(folder)
    sink.handle(BEGAN)
    sink.handle(TrialStarted("harma-s1", {"adapter.bottleneck": 32, "train.seed": 1, "adapter.share": "both"}, arm,
                             1.0))
    for event in epochs:
        sink.handle(event)
    sink.handle(TrialEnded("harma-s1", status, 20.0))
    sink.handle(StudyEnded(21.0))


def test_every_curve_is_a_scalar_per_epoch_with_the_reported_value(tmp_path):
    events = [reported("harma-s1", k) for k in (1, 2, 3)]
    run(tmp_path, events)
    acc = read(tmp_path, "harma-s1")
    assert sorted(acc.Tags()["scalars"]) == ["best/val_r_mean", "test/r_mean", "train/loss", "train/loss_contr",
                                             "train/lr", "val/r1_i2t", "val/r_mean"]
    for event in events:
        for split, metrics in event.curves.items():
            for metric, value in metrics.items():
                got = {s.step: s.value for s in acc.Scalars(f"{split}/{metric}")}
                assert got[event.epoch] == pytest.approx(value, rel=1e-6)
    assert [(s.step, s.value) for s in acc.Scalars("best/val_r_mean")] == [(1, 21.0), (2, 22.0), (3, 23.0)]


def test_the_hparams_records_hold_the_overrides_the_arm_and_the_status(tmp_path):
    run(tmp_path, [reported("harma-s1", 1)])
    records = hparams(read(tmp_path, "harma-s1"))
    experiment = records["_hparams_/experiment"].experiment
    assert sorted(h.name for h in experiment.hparam_infos) == ["adapter.bottleneck", "adapter.share", "arm",
                                                                "train.seed"]
    assert [m.name.tag for m in experiment.metric_infos] == ["best/val_r_mean"]
    start = records["_hparams_/session_start_info"].session_start_info.hparams
    assert (start["adapter.bottleneck"].number_value, start["adapter.share"].string_value,
            start["arm"].string_value, start["train.seed"].number_value) == (32.0, "both", "harma", 1.0)
    end = records["_hparams_/session_end_info"].session_end_info
    assert api_pb2.Status.Name(end.status) == "STATUS_SUCCESS"


def test_a_failed_trial_ends_its_session_as_a_failure(tmp_path):
    run(tmp_path, [reported("harma-s1", 1)], status="FAILED")
    end = hparams(read(tmp_path, "harma-s1"))["_hparams_/session_end_info"].session_end_info
    assert api_pb2.Status.Name(end.status) == "STATUS_FAILURE"


def test_an_epoch_reported_again_is_written_once(tmp_path):
    run(tmp_path, [reported("harma-s1", 1), reported("harma-s1", 2), reported("harma-s1", 1, shift=5.0),
                   reported("harma-s1", 2, shift=5.0), reported("harma-s1", 3)])
    assert [(s.step, s.value) for s in read(tmp_path, "harma-s1").Scalars("val/r_mean")] == [
        (1, 21.0), (2, 22.0), (3, 23.0)]


def test_a_trial_resumed_by_a_later_driver_rewrites_its_run(tmp_path):
    run(tmp_path, [reported("harma-s1", 1), reported("harma-s1", 2, shift=0.5)])
    run(tmp_path, [reported("harma-s1", 1), reported("harma-s1", 2), reported("harma-s1", 3)])
    values = [(s.step, s.value) for s in read(tmp_path, "harma-s1").Scalars("val/r_mean")]
    assert values == [(1, 21.0), (2, 22.0), (3, 23.0)]


def test_the_sink_loads_tensorboardx_without_torch(tmp_path):
    """tensorboardX's writer imports torch when it can; the study driver must not (about 1 GiB).  After the
    sink has written a run, torch is still absent and still importable."""
    import json
    import subprocess
    import sys

    code = f"""
import json, sys
from harma.progress.events import StudyBegan, TrialStarted
from harma.tracking.tensorboard import TensorBoardSink
sink = TensorBoardSink({str(tmp_path)!r})
sink.handle(StudyBegan("st", "ablation", "val_r_mean", "max", 1, 1, 1, 1, False, 0.0))
sink.handle(TrialStarted("a-s1", {{"train.seed": 1}}, "a", 1.0))
sink.close()
seen = ["tensorboardX" in sys.modules, "torch" in sys.modules]
import torch
print(json.dumps(seen + [hasattr(torch, "nn")]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [True, False, True]
    assert list((tmp_path / "a-s1").iterdir())
