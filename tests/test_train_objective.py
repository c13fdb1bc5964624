"""The trainer picks its best epoch on the configured objective (`train.objective`, `train.objective_mode`),
and reports peak memory as process RSS and, on CUDA only, allocated GPU memory."""
from __future__ import annotations

from harma.config import apply_overrides
from harma.train import train


def test_best_epoch_follows_the_configured_objective_and_mode(tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"train.epochs": 3, "train.objective": "txt_r1", "train.objective_mode": "min"})
    summary = train(cfg)
    history = summary.history
    lowest = min(r.val["txt_r1"] for r in history)
    first_lowest = next(r for r in history if r.val["txt_r1"] == lowest)  # a tie does not move the best epoch
    assert summary.best_epoch == first_lowest.epoch and summary.best_val == first_lowest.val
    assert all(r.best_val["txt_r1"] == min(h.val["txt_r1"] for h in history[:r.epoch]) for r in history)
    assert summary.peak_rss_bytes > 0 and summary.peak_gpu_bytes is None  # on CPU: no GPU memory
