"""Evaluation keeps its loaders: one image loader per split for the whole run, created once, whose worker
processes (`data.num_workers > 0`) stay alive from one epoch's evaluation to the next, giving the same metrics
as a one-shot `evaluate_split`."""
from __future__ import annotations

import torch

import harma.evaluate as evaluate
from harma.config import apply_overrides
from harma.data import build_datasets
from harma.model.build import build_model, tokenizer_for
from harma.train import train


def test_a_split_evaluator_keeps_its_loader_and_worker_processes_across_runs(tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"data.num_workers": 1, "train.eval_batch_size": 16})
    torch.manual_seed(0)
    model, device = build_model(cfg), torch.device("cpu")
    split = build_datasets(cfg.data, tokenizer_for(cfg)).val
    evaluator = evaluate.SplitEvaluator(split, evaluate.Encoders(model, cfg, device), cfg)
    first = evaluator.run()
    workers = evaluator.loader._iterator._workers
    pids = [w.pid for w in workers]
    assert evaluator.loader.persistent_workers and len(pids) == 1 and workers[0].is_alive()
    assert evaluator.run() == first
    assert evaluator.loader._iterator._workers is workers and [w.pid for w in workers] == pids
    assert evaluate.evaluate_split(model, split, cfg, device) == first


def test_a_run_creates_one_evaluation_loader_per_split(tiny_cfg, monkeypatch):
    made = []
    real = evaluate.DataLoader
    monkeypatch.setattr(evaluate, "DataLoader", lambda *a, **k: made.append(k["batch_size"]) or real(*a, **k))
    summary = train(apply_overrides(tiny_cfg, {"train.epochs": 2, "train.eval_batch_size": 16}))
    assert summary.epochs_run == 2 and made == [16, 16]
