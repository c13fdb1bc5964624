"""A loader that overlaps: `data.num_workers` defaults to `auto` (the CPUs this process may use, less the one
it trains on, at most MAX_AUTO_WORKERS), an explicit count is kept, anything else is one error naming the key;
the evaluation's image loaders keep their workers across passes and end them on close."""
from __future__ import annotations

import multiprocessing
import os

import pytest
import torch

from harma.config import MAX_AUTO_WORKERS, ConfigError, RunConfig, apply_overrides, load_config, loader_workers


@pytest.mark.parametrize("cpus, workers", [(1, 0), (2, 1), (5, 4), (64, MAX_AUTO_WORKERS)])
def test_auto_follows_the_cpu_affinity(monkeypatch, cpus, workers):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert RunConfig().data.num_workers == "auto"
    assert loader_workers(RunConfig().data) == workers


def test_an_explicit_count_is_kept_and_a_bad_one_is_refused():
    assert loader_workers(load_config("synthetic-tiny", {"data.num_workers": 3}).data) == 3
    assert loader_workers(load_config("synthetic-tiny").data) == 0           # the test config asks for none
    with pytest.raises(ConfigError, match="data.num_workers: expected an int >= 0 or auto, got 'many'"):
        load_config("synthetic-tiny", {"data.num_workers": "many"})


def test_eval_loaders_keep_their_workers_until_closed(tiny_cfg):
    from harma.data import build_datasets
    from harma.evaluate import Encoders, SplitEvaluator
    from harma.model.build import build_model, tokenizer_for

    cfg = apply_overrides(tiny_cfg, {"data.num_workers": 1})
    data = build_datasets(cfg.data, tokenizer_for(cfg))
    encoders = Encoders(build_model(cfg), cfg, torch.device("cpu"))
    val, test = SplitEvaluator(data.val, encoders, cfg), SplitEvaluator(data.test, encoders, cfg)
    first = val.run()
    workers = multiprocessing.active_children()
    assert len(workers) == 1 and val.loader.persistent_workers
    assert val.run() == first
    assert multiprocessing.active_children() == workers                     # the same worker, not a new one
    test.run()
    assert len(multiprocessing.active_children()) == 2
    val.close()
    test.close()
    assert multiprocessing.active_children() == []


def test_a_run_repeats_with_the_same_worker_count_and_draws_otherwise_with_another(tiny_cfg, tmp_path):
    """Each loader worker draws its augmentations from its own random stream (the README's reason for fixed
    counts in the shipped configs): the same count gives the same losses bit for bit, another count others."""
    from harma.train import train

    def losses(name: str, workers: int) -> dict:
        cfg = apply_overrides(tiny_cfg, {"train.out_dir": str(tmp_path / name), "train.epochs": 1,
                                         "data.num_workers": workers})
        return train(cfg).history[0].train

    one = losses("a", 1)
    assert losses("b", 1) == one
    assert losses("c", 0) != one
