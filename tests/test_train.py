"""The Ray-free trainer on the synthetic set: learning, determinism, resume, checkpoints, errors, torchrun DDP."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from harma.config import ConfigError, apply_overrides
from harma.data import build_datasets
from harma.evaluate import evaluate_split
from harma.model.build import build_model, tokenizer_for
from harma.train import NonFiniteError, train


def untrained_val(cfg):
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg)
    return evaluate_split(model, build_datasets(cfg.data, tokenizer_for(cfg)).val, cfg, torch.device("cpu"))


def test_two_epochs_raise_val_mr_above_the_untrained_model(tiny_cfg):
    records = []
    summary = train(tiny_cfg, report=records.append)
    assert [r.epoch for r in records] == [1, 2]
    assert summary.best_val["r_mean"] > untrained_val(tiny_cfg)["r_mean"] + 3
    assert records[-1].train["loss"] < records[0].train["loss"]
    for record in records:
        assert set(record.val) == set(record.test) == {
            "txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean", "r_mean_tie_gap"}
        assert record.val["r_mean_tie_gap"] >= 0 and record.test["r_mean_tie_gap"] >= 0
        assert record.images_per_s > 0 and record.epoch_seconds > 0 and record.lr >= 0
        assert set(record.train) == {"loss", "loss_contr"}          # contrastive only in synthetic-tiny
        assert record.train["loss"] == record.train["loss_contr"]    # weight 1: the total is that term


def test_same_seed_gives_identical_metrics(tiny_cfg, tmp_path):
    cfg = apply_overrides(tiny_cfg, {"train.epochs": 1})
    a = train(apply_overrides(cfg, {"train.out_dir": str(tmp_path / "a")}))
    b = train(apply_overrides(cfg, {"train.out_dir": str(tmp_path / "b")}))
    assert a.best_val == b.best_val and a.test_at_best_val == b.test_at_best_val


def test_best_epoch_selected_on_val_and_reports_its_test(tiny_cfg):
    summary = train(apply_overrides(tiny_cfg, {"train.epochs": 3}))
    history = summary.history
    best = max(history, key=lambda r: r.val["r_mean"])
    assert summary.best_epoch == best.epoch
    assert summary.test_at_best_val == best.test


def test_resume_continues_at_the_next_epoch(tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"train.epochs": 3})

    def stop_in_second_report(record):
        if record.epoch == 2:     # epoch 2 is checkpointed and logged before its report
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, report=stop_in_second_report)
    lines = [json.loads(x) for x in open(os.path.join(cfg.train.out_dir, "log.jsonl"))]
    assert [x["epoch"] for x in lines] == [1, 2]
    seen = []
    summary = train(cfg, report=seen.append, replay=True)
    assert [r.epoch for r in seen] == [1, 2, 3]                    # the lost report of epoch 2 comes back
    assert [r.epoch for r in summary.history] == [1, 2, 3]
    lines = [json.loads(x) for x in open(os.path.join(cfg.train.out_dir, "log.jsonl"))]
    assert [x["epoch"] for x in lines] == [1, 2, 3]
    uninterrupted = train(apply_overrides(cfg, {"train.out_dir": cfg.train.out_dir + "-straight"}))
    assert uninterrupted.history[-1].val == summary.history[-1].val


def test_checkpoints_hold_only_trainable_tensors(tiny_cfg):
    train(apply_overrides(tiny_cfg, {"train.epochs": 1}))
    model = build_model(tiny_cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(os.path.join(tiny_cfg.train.out_dir, name), weights_only=True)   # plain data only
        assert set(ckpt["trainable"]) == trainable == set(model.adapter_params())
    assert not [f for f in os.listdir(tiny_cfg.train.out_dir) if f.endswith(".tmp")]


def test_frozen_model_is_evaluated_once_not_trained(tiny_cfg):
    records = []
    summary = train(apply_overrides(tiny_cfg, {"adapter.towers": "none"}), report=records.append)
    assert len(records) == 1 and summary.epochs_run == 1
    assert summary.best_val == untrained_val(apply_overrides(tiny_cfg, {"adapter.towers": "none"}))
    assert records[0].train == {} and records[0].lr == 0.0 and summary.trainable_params == 0   # trains nothing
    ckpt = torch.load(os.path.join(tiny_cfg.train.out_dir, "last.pt"), weights_only=True)
    assert ckpt["trainable"] == {} and ckpt["optimizer"] is None and ckpt["scheduler"] is None


def test_nan_loss_stops_with_epoch_and_step(tiny_cfg, poison_loss):
    poison_loss(3, float("nan"))
    with pytest.raises(NonFiniteError, match=r"epoch 1 step 2: loss is nan"):
        train(tiny_cfg)


@pytest.mark.parametrize("every", [1, 2, 1000])
def test_nan_guard_names_the_first_bad_step_whatever_the_read_interval(tiny_cfg, poison_loss, every):
    poison_loss(2, float("inf"))
    with pytest.raises(NonFiniteError, match=r"epoch 1 step 1: loss is inf"):
        train(apply_overrides(tiny_cfg, {"train.finite_check_every": every}))


def test_batch_larger_than_train_split_is_an_error(tiny_cfg):
    with pytest.raises(ValueError, match="train.batch_size=5000"):
        train(apply_overrides(tiny_cfg, {"train.batch_size": 5000}))


def test_cuda_requested_without_cuda_is_an_error(tiny_cfg):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="train.device=.cuda.: CUDA is not available"):
        train(apply_overrides(tiny_cfg, {"train.device": "cuda"}))


@pytest.mark.slow
def test_torchrun_two_gloo_processes(tiny_cfg, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561",
           "-m", "harma.cli", "train", "--config", "synthetic-tiny", "--set",
           f"data.image_root={tiny_cfg.data.image_root}", "data.synthetic_images=120", "train.epochs=1",
           f"train.out_dir={out}", "train.batch_size=16"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch   1") == 1          # only rank 0 prints
    log = [json.loads(x) for x in open(out / "log.jsonl")]
    assert len(log) == 1 and 0 <= log[0]["val"]["r_mean"] <= 100


def test_affiliation_loss_without_scene_labels_is_an_error(tiny_cfg, tmp_path):
    root = tiny_cfg.data.image_root
    entries = json.load(open(os.path.join(root, "train.json")))
    for entry in entries:
        entry.pop("label"), entry.pop("label_name")
    (tmp_path / "train.json").write_text(json.dumps(entries))
    cfg = apply_overrides(tiny_cfg, {
        "data.synthetic_images": 0, "data.image_root": os.path.join(root, "images"),
        "data.train_json": str(tmp_path / "train.json"), "data.val_json": os.path.join(root, "val.json"),
        "data.test_json": os.path.join(root, "test.json"), "loss.w_affil": 0.5})
    with pytest.raises(ValueError, match="loss.w_affil=0.5: the affiliation loss needs scene labels"):
        train(cfg)


def test_each_report_finds_its_epoch_checkpointed_and_logged(tiny_cfg):
    """A receiver that stops the run on a report (Tune's STOP) keeps that epoch's weights and log line."""
    from harma.checkpoint import load_checkpoint

    folder = tiny_cfg.train.out_dir
    seen = []

    def report(record):
        best = load_checkpoint(os.path.join(folder, "best.pt"))["epoch"]
        logged = [json.loads(x)["epoch"] for x in open(os.path.join(folder, "log.jsonl"))]
        seen.append((record.epoch, load_checkpoint(os.path.join(folder, "last.pt"))["epoch"],
                     best == record.best_epoch, logged[-1]))

    train(apply_overrides(tiny_cfg, {"train.epochs": 3}), report=report)
    assert seen == [(1, 1, True, 1), (2, 2, True, 2), (3, 3, True, 3)]


def test_a_planted_pickle_in_last_pt_is_refused_not_run(tiny_cfg, tmp_path):
    from harma.checkpoint import CheckpointError

    marker = tmp_path / "ran"
    os.makedirs(tiny_cfg.train.out_dir)
    torch.save({"trainable": {}, "payload": _Payload(str(marker))}, os.path.join(tiny_cfg.train.out_dir, "last.pt"))
    with pytest.raises(CheckpointError, match=r"last.pt: cannot be loaded with weights_only=True"):
        train(tiny_cfg)
    assert not marker.exists()


class _Payload:
    """Unpickling this would create a file: what a crafted checkpoint could do."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_resuming_into_a_folder_of_another_run_is_refused(tiny_cfg):
    train(apply_overrides(tiny_cfg, {"train.epochs": 1}))
    with pytest.raises(ConfigError, match=r"holds a run with another config \(adapter.bottleneck: 16 -> 8\)"):
        train(apply_overrides(tiny_cfg, {"adapter.bottleneck": 8}))
    records = []
    train(apply_overrides(tiny_cfg, {"train.device": "cpu", "data.num_workers": 0}), report=records.append)
    assert [r.epoch for r in records] == [2]                   # same run, more epochs: resumes
    fresh = train(apply_overrides(tiny_cfg, {"adapter.bottleneck": 8, "train.resume": False, "train.epochs": 1}))
    assert fresh.epochs_run == 1


def test_replay_reports_the_checkpointed_epochs_again_then_continues(tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"train.epochs": 2})
    first = []
    train(apply_overrides(cfg, {"train.epochs": 1}), report=first.append)
    seen = []
    train(cfg, report=seen.append, replay=True)
    assert [r.epoch for r in seen] == [1, 1 + 1]                 # epoch 1 replayed, epoch 2 trained
    assert seen[0] == first[0]                                    # the whole record comes back, as reported
    again = []                                                    # every epoch done: still reports, trains none
    summary = train(cfg, report=again.append, replay=True)
    assert [r.epoch for r in again] == [1, 2] and again[1] == seen[1]
    assert summary.epochs_run == 2
    assert train(cfg, report=(quiet := []).append) and quiet == []  # without replay: nothing to report


def test_a_run_removes_the_debris_a_killed_write_left_in_its_folder(tiny_cfg):
    folder = tiny_cfg.train.out_dir
    os.makedirs(folder)
    debris = os.path.join(folder, ".last.pt.ab12cd34.tmp")
    open(debris, "wb").write(b"half a checkpoint")
    train(apply_overrides(tiny_cfg, {"train.epochs": 1}))
    assert not os.path.exists(debris) and os.path.exists(os.path.join(folder, "last.pt"))


def test_a_non_finite_val_objective_stops_the_run_naming_the_epoch(tiny_cfg, monkeypatch):
    from harma.evaluate import SplitEvaluator

    real = SplitEvaluator.run
    monkeypatch.setattr(SplitEvaluator, "run", lambda self: {**real(self), "r_mean": float("inf")})
    with pytest.raises(NonFiniteError, match="val r_mean is inf at epoch 1"):
        train(apply_overrides(tiny_cfg, {"train.epochs": 1}))
    assert not os.path.exists(os.path.join(tiny_cfg.train.out_dir, "best.pt"))


def test_resume_reads_a_checkpoint_whose_history_predates_peak_memory(tiny_cfg):
    """A last.pt written before the records held peak memory (plain dicts without those keys) still resumes and
    replays; log.jsonl is rewritten from it in the same JSON layout, the absent memory as null."""
    from harma.checkpoint import load_checkpoint, save_atomic

    cfg = apply_overrides(tiny_cfg, {"train.epochs": 2})
    first = []
    train(apply_overrides(cfg, {"train.epochs": 1}), report=first.append)
    last = os.path.join(cfg.train.out_dir, "last.pt")
    ckpt = load_checkpoint(last)
    for entry in ckpt["history"]:
        del entry["peak_rss_bytes"], entry["peak_gpu_bytes"]
    save_atomic(ckpt, last)
    seen = []
    train(cfg, report=seen.append, replay=True)
    assert [r.epoch for r in seen] == [1, 2]
    assert seen[0].peak_rss_bytes is None and seen[0].val == first[0].val and seen[0].train == first[0].train
    lines = [json.loads(x) for x in open(os.path.join(cfg.train.out_dir, "log.jsonl"))]
    assert [x["epoch"] for x in lines] == [1, 2] and lines[0]["peak_rss_bytes"] is None
    assert lines[0]["val"] == first[0].val and lines[1]["best_val"] == seen[1].best_val
