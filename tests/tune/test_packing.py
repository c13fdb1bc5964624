"""Packed trials (harma.tune.packing) with CUDA faked, as tests/test_device.py fakes it: a fractional GPU caps the
trial process's GPU memory before training, an out-of-memory inside the share is one GpuShareError that Tune
never retries, and a trial's loader workers fit `resources.cpus_per_worker` unless the study sets them."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from harma.errors import GpuShareError, HarmaError, is_curable
from harma.study.model import Resources
from harma.study.parse import load_study
from harma.tune import trial as trial_module
from harma.tune.packing import gpu_share, loader_workers
from harma.tune.records import FAILURE_KEY, FAILURE_TYPE_KEY, TrialSpec

GIB = 1024 ** 3


@pytest.fixture
def fake_cuda(monkeypatch):
    """One visible GPU (an H200's 139.8 GiB); records memory-fraction calls and what ran after them."""
    calls: list = []

    def set_fraction(fraction, device=None):
        calls.append(("fraction", fraction, torch.device(device)))

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", set_fraction)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: SimpleNamespace(name="NVIDIA H200", total_memory=int(139.8 * GIB)))
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return calls


def oom() -> torch.cuda.OutOfMemoryError:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                                       "capacity of 139.80 GiB\nof which 1.2 GiB is free.")


def test_a_fractional_gpu_caps_memory_before_the_body_runs(fake_cuda):
    with gpu_share(0.25, "cuda"):
        fake_cuda.append(("body",))
    assert fake_cuda == [("fraction", 0.25, torch.device("cuda", 0)), ("body",)]


@pytest.mark.parametrize("share,device", [(0.0, "cpu"), (1.0, "cuda"), (2.0, "cuda"), (0.5, "cpu")])
def test_a_whole_gpu_or_a_cpu_trial_is_left_alone(fake_cuda, share, device):
    with pytest.raises(torch.cuda.OutOfMemoryError):
        with gpu_share(share, device):
            raise oom()
    assert fake_cuda == []


def test_an_out_of_memory_inside_the_share_is_one_incurable_harma_error(fake_cuda):
    with pytest.raises(GpuShareError) as caught:
        with gpu_share(0.25, "cuda"):
            raise oom()
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, HarmaError)
    assert "resources.gpus_per_trial=0.25" in message and "34.9 of 139.8 GiB on NVIDIA H200" in message
    assert "train.batch_size" in message and "Tried to allocate 2.00 GiB" in message
    assert GpuShareError.curable is False and not is_curable("GpuShareError")


def test_other_errors_pass_through_the_share(fake_cuda):
    with pytest.raises(ValueError, match="not memory"):
        with gpu_share(0.25, "cuda"):
            raise ValueError("not memory")


def _cfg():
    return SimpleNamespace(train=SimpleNamespace(device="cuda", epochs=1), adapter=SimpleNamespace(towers="both"))


def test_an_in_process_trial_trains_inside_its_share(fake_cuda, monkeypatch):
    import harma.train

    monkeypatch.setattr(trial_module, "_where", lambda: {"host": "h"})
    monkeypatch.setattr(harma.train, "train", lambda cfg, report, replay: fake_cuda.append(("train",)))
    trial_module._train_in_process(_cfg(), 0.25)
    assert fake_cuda == [("fraction", 0.25, torch.device("cuda", 0)), ("train",)]


def test_a_trial_out_of_memory_in_its_share_is_reported_never_retried(fake_cuda, monkeypatch):
    import ray.tune

    import harma.train

    reports = []
    study = dataclasses.replace(load_study("studies/gpu-smoke.yaml"), resources=Resources(gpus_per_trial=0.25))
    monkeypatch.setattr(ray.tune, "report", reports.append)
    monkeypatch.setattr(trial_module, "_where", lambda: {"host": "h"})
    monkeypatch.setattr(trial_module, "trial_run_config", lambda study, spec, root: _cfg())

    def train(cfg, report, replay):
        raise oom()

    monkeypatch.setattr(harma.train, "train", train)
    trial_module.run_trial({"trial": TrialSpec("t1", 1, {})}, study, "runs", "ray")
    assert len(reports) == 1 and reports[0][FAILURE_TYPE_KEY] == "GpuShareError"
    assert "resources.gpus_per_trial=0.25" in reports[0][FAILURE_KEY]


@pytest.mark.parametrize("cpus,workers", [(1, 0), (0.5, 0), (1.5, 0), (2, 1), (4, 3), (8.0, 7)])
def test_loader_workers_fit_the_cpus_beside_the_process(cpus, workers):
    assert loader_workers(cpus) == workers


def _num_workers(study, overrides=None, **study_changes) -> int:
    study = dataclasses.replace(study, **study_changes)
    return trial_module.trial_run_config(study, TrialSpec("t1", 0, overrides or {}), "runs").data.num_workers


def test_a_trial_run_config_fits_its_loader_workers_unless_the_study_sets_them():
    study = load_study("studies/search-rsitmd.yaml")     # a shipped config: 4 loader workers in its base file
    assert study.run_config({}).data.num_workers == 4 and "data.num_workers" not in study.base_set
    res = study.resources
    assert _num_workers(study, resources=dataclasses.replace(res, cpus_per_worker=1)) == 0
    assert _num_workers(study, resources=dataclasses.replace(res, cpus_per_worker=6)) == 5
    set_by_study = {**study.base_set, "data.num_workers": 2}
    assert _num_workers(study, base_set=set_by_study, resources=dataclasses.replace(res, cpus_per_worker=8)) == 2
    assert _num_workers(study, {"data.num_workers": 1}, resources=dataclasses.replace(res, cpus_per_worker=8)) == 1


def _compile(study, overrides=None, **study_changes) -> str:
    study = dataclasses.replace(study, **study_changes)
    return trial_module.trial_run_config(study, TrialSpec("t1", 0, overrides or {}), "runs").train.compile


def test_a_gpu_trial_runs_cuda_graphs_unless_the_study_sets_compile():
    study = load_study("studies/search-rsitmd.yaml")     # a shipped config: compile off in its base file
    assert study.run_config({}).train.compile == "off" and "train.compile" not in study.base_set
    res = study.resources
    assert _compile(study, resources=dataclasses.replace(res, gpus_per_trial=1)) == "auto"
    assert _compile(study, resources=dataclasses.replace(res, gpus_per_trial=0.25)) == "auto"
    assert _compile(study, resources=dataclasses.replace(res, gpus_per_trial=0)) == "off"       # CPU: eager
    gpu = dataclasses.replace(res, gpus_per_trial=1)
    assert _compile(study, {"train.compile": "default"}, resources=gpu) == "default"
    assert _compile(study, base_set={**study.base_set, "train.compile": "off"}, resources=gpu) == "off"
    assert load_study("studies/gpu-smoke.yaml").base_set["train.compile"] == "auto"
