"""GPU tests (`pytest -m gpu`; deselected by default): the trainer, resume, `harma eval` and the NaN guard on
CUDA, asked for as a bare `train.device=cuda` the way a Ray trial asks.  `benchmarks/gpu_check.sh` runs them on
a GPU; its `--dry-run` runs the same tests on CPU (HARMA_GPU_TESTS_ON_CPU=1), so their logic runs in CI too.
"""
from __future__ import annotations

import math
import os

import pytest
import torch

from harma import cli
from harma.config import apply_overrides
from harma.train import NonFiniteError, train

pytestmark = pytest.mark.gpu


@pytest.fixture
def device_name() -> str:
    """`cuda` on a GPU machine; `cpu` when HARMA_GPU_TESTS_ON_CPU=1 (the dry run); otherwise skipped."""
    if torch.cuda.is_available():
        return "cuda"
    if os.environ.get("HARMA_GPU_TESTS_ON_CPU") == "1":
        return "cpu"
    pytest.skip("needs a CUDA device (or HARMA_GPU_TESTS_ON_CPU=1 for the CPU dry run)")


def on(cfg, device_name: str, **overrides):
    return apply_overrides(cfg, {"train.device": device_name, **overrides})


def untrained_val_mr(cfg) -> float:
    return train(apply_overrides(cfg, {"adapter.towers": "none",
                                       "train.out_dir": cfg.train.out_dir + "-frozen"})).best_val["r_mean"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_two_epochs_train_on_the_device(tiny_cfg, device_name, precision):
    cfg = on(tiny_cfg, device_name, **{"train.precision": precision})
    summary = train(cfg)
    assert summary.epochs_run == 2
    assert summary.best_val["r_mean"] > untrained_val_mr(cfg)
    assert all(math.isfinite(r.train["loss"]) for r in summary.history)
    if device_name == "cuda":
        assert summary.peak_gpu_bytes > 0


def test_resume_on_the_device_continues_at_the_next_epoch(tiny_cfg, device_name):
    first = train(on(tiny_cfg, device_name, **{"train.epochs": 1}))
    assert first.epochs_run == 1
    records = []
    resumed = train(on(tiny_cfg, device_name), report=records.append)
    assert [r.epoch for r in records] == [2]
    assert resumed.epochs_run == 2 and len(resumed.history) == 2
    assert resumed.history[0].val == first.history[0].val


def test_eval_of_a_checkpoint_on_the_device(tiny_cfg, device_name, capsys):
    summary = train(on(tiny_cfg, device_name, **{"train.epochs": 1}))
    best = os.path.join(summary.out_dir, "best.pt")
    code = cli.main(["eval", "--config", "synthetic-tiny", "--checkpoint", best, "--set",
                     f"train.device={device_name}", f"data.image_root={tiny_cfg.data.image_root}",
                     f"data.synthetic_images={tiny_cfg.data.synthetic_images}"])
    out = capsys.readouterr().out
    assert code == 0, out
    import json
    result = json.loads(out)
    assert result["format"] == "harma"
    assert result["val"]["r_mean"] == pytest.approx(summary.best_val["r_mean"], abs=1e-6)


def test_nan_guard_on_the_device_names_epoch_and_step(tiny_cfg, device_name, poison_loss):
    poison_loss(2, float("inf"))
    with pytest.raises(NonFiniteError, match=r"epoch 1 step 1: loss is inf"):
        train(on(tiny_cfg, device_name, **{"train.finite_check_every": 2}))


def test_compiled_training_on_cuda(tiny_cfg, device_name, mode="reduce-overhead"):
    if device_name != "cuda":
        pytest.skip("CUDA graphs need CUDA (test_train_step checks what the option passes to torch.compile)")
    summary = train(on(tiny_cfg, device_name, **{"train.compile": mode, "train.precision": "bf16"}))
    assert summary.epochs_run == 2 and math.isfinite(summary.history[-1].train["loss"])
    assert summary.best_val["r_mean"] > untrained_val_mr(on(tiny_cfg, device_name))
