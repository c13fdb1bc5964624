"""Checks made before a study starts: custom resources exist, a trial's GPUs fit one node, storage is shared on
multi-host clusters; and the derived concurrency."""
from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("ray")

from harma.tune.cluster import ClusterError, ClusterShape, check_fits, derive_max_concurrent  # noqa: E402
from harma.study.model import Resources  # noqa: E402
from harma.study.parse import load_study  # noqa: E402


def study_with(**changes):
    base = load_study("studies/smoke.yaml")
    return dataclasses.replace(base, **changes)


def shape(*nodes, hosts=1):
    total = {}
    for node in nodes:
        for k, v in node.items():
            total[k] = total.get(k, 0) + v
    return ClusterShape(len(nodes), hosts, total, list(nodes))


def test_missing_custom_resource_is_named():
    with pytest.raises(ClusterError, match="resources.custom.trial_slot"):
        check_fits(study_with(), shape({"CPU": 8}))
    check_fits(study_with(), shape({"CPU": 8}, {"CPU": 2, "trial_slot": 2}))


def test_more_gpus_per_worker_than_any_node_has_is_an_error():
    res = Resources(gpus_per_trial=16, cpus_per_worker=4, workers_per_trial=2)
    with pytest.raises(ClusterError, match="needs 8.0 GPU.*largest node has 4"):
        check_fits(study_with(resources=res), shape({"CPU": 32, "GPU": 4}, {"CPU": 32, "GPU": 4}))
    check_fits(study_with(resources=res), shape({"CPU": 32, "GPU": 8}))


def test_node_local_storage_refused_on_a_multi_host_cluster(tmp_path):
    nodes = ({"CPU": 4, "trial_slot": 2}, {"CPU": 4, "trial_slot": 2})
    study = study_with(storage=str(tmp_path / "results"))
    with pytest.raises(ClusterError, match="node-local.*2 hosts"):
        check_fits(study, shape(*nodes, hosts=2))
    check_fits(study, shape(*nodes, hosts=1))                  # several nodes on one host share its disk
    check_fits(study_with(storage="s3://bucket/harma", optuna_storage="sqlite:////tmp/o.db"), shape(*nodes, hosts=2))


def test_max_concurrent_derivation():
    gpu = Resources(gpus_per_trial=2, cpus_per_worker=4, workers_per_trial=2)
    assert derive_max_concurrent(study_with(resources=gpu, max_concurrent=None), shape({"GPU": 8, "CPU": 64},
                                                                                      {"GPU": 8, "CPU": 64})) == 8
    cpu = Resources(gpus_per_trial=0, cpus_per_worker=1, workers_per_trial=2)
    assert derive_max_concurrent(study_with(resources=cpu, max_concurrent=None), shape({"CPU": 7})) == 3
    assert derive_max_concurrent(study_with(max_concurrent=5), shape({"CPU": 1})) == 5


def test_trial_resources_in_process_and_torch_trainer_driver():
    from harma.tune.runner import DRIVER_MEMORY_BYTES, _trial_resources

    one = study_with(resources=Resources(gpus_per_trial=1, cpus_per_worker=4, workers_per_trial=1))
    assert _trial_resources(one) == {"cpu": 4, "gpu": 1}
    ddp = study_with(resources=Resources(gpus_per_trial=2, cpus_per_worker=4, workers_per_trial=2,
                                         custom={"trial_slot": 1}))
    assert _trial_resources(ddp) == {"cpu": 0, "memory": DRIVER_MEMORY_BYTES, "trial_slot": 1}


def test_packed_trials_share_a_gpu():
    """gpus_per_trial 0.25: Ray gets a 0.25-GPU request per trial, and one GPU runs four at once."""
    from harma.tune.runner import _trial_resources

    packed = load_study("studies/gpu-smoke.yaml")
    assert packed.resources.gpus_per_trial == 0.25
    assert _trial_resources(packed) == {"cpu": 1, "gpu": 0.25}
    assert derive_max_concurrent(packed, shape({"CPU": 16, "GPU": 1})) == 4
    assert derive_max_concurrent(packed, shape({"CPU": 16, "GPU": 2}, {"CPU": 16, "GPU": 1})) == 12
    check_fits(packed, shape({"CPU": 16, "GPU": 1}))


def test_gpu_trial_asks_for_bare_cuda_which_resolves_to_an_indexed_device(tmp_path, monkeypatch):
    """The trial's `train.device=cuda` must become cuda:<current> before torch.cuda.set_device sees it."""
    import torch

    from harma.runtime import use_device
    from harma.tune.records import TrialSpec
    from harma.tune.trial import trial_run_config

    study = load_study("studies/gpu-smoke.yaml")
    cfg = trial_run_config(study, TrialSpec("trial-0000", 0, {}), str(tmp_path))
    assert cfg.train.device == "cuda"
    seen = []
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: seen.append(torch.device(d)))
    assert use_device(cfg.train.device) == torch.device("cuda", 0)
    assert seen == [torch.device("cuda", 0)] and seen[0].index == 0
