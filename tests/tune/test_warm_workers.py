"""Warm workers: one process runs trial A, then a different trial B (stopped at its first epoch, as Tune stops
a trial), then A again, through the trial's own entry point, and every run reports exactly what a fresh process
reports for the same config and seed: the same metrics and losses bit for bit and the same best.pt tensors.
The frozen backbone comes from the process's cache after the first build, and no loader worker outlives its
run.  Also: the cache key follows the weights file, and the study's trials get the cache, the thread timeout
and the compile cache in their environment."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harma_subprocess import REPO, harma_env, tiny_study

CHILD = Path(__file__).with_name("warm_trials.py")
ARMS = """
seeds: [5]
arms:
  a: {}
  b: {adapter.bottleneck: 8, optim.lr: 0.02, loss.w_triplet: 0.5}
"""


def run_child(scratch: Path, out: str, *runs: str) -> dict:
    env = {**harma_env(), "HARMA_BACKBONE_CACHE": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(CHILD), "warm.yaml", str(scratch / out), *runs], cwd=scratch,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_reused_process_reports_what_a_fresh_one_does(scratch):
    body = tiny_study("warm", "ablation", 2, ARMS).replace(
        "data.image_root: .harma/synthetic-120}", "data.image_root: .harma/synthetic-120, data.num_workers: 1}")
    (scratch / "warm.yaml").write_text(body)
    warm = run_child(scratch, "warm", "a", "b:1", "a")
    fresh_a = run_child(scratch, "fresh-a", "a")["runs"][0]
    fresh_b = run_child(scratch, "fresh-b", "b:1")["runs"][0]
    first, stopped, again = warm["runs"]
    assert len(fresh_a["epochs"]) == 2 and len(fresh_b["epochs"]) == 1
    assert first == fresh_a and again == fresh_a          # metrics, losses, best.pt: bit for bit
    assert stopped == fresh_b
    assert fresh_a["epochs"] != fresh_b["epochs"]         # B is another trial indeed
    assert (warm["hits"], warm["misses"]) == (2, 1)       # one build, two copies
    assert [r["children"] for r in warm["runs"]] == [0, 0, 0]


def test_the_backbone_key_follows_the_weights_file(tmp_path):
    from harma.model.cache import backbone_key

    weights = tmp_path / "w.pt"
    weights.write_bytes(b"12345")
    key = backbone_key("ViT-B-32", True, 224, str(weights), seed=1)
    assert key == backbone_key("ViT-B-32", True, 224, str(weights), seed=2)     # weights overwrite the init
    assert key != backbone_key("ViT-B-32", False, 224, str(weights), seed=1)
    assert key != backbone_key("ViT-B-32", True, 256, str(weights), seed=1)
    os.utime(weights, ns=(1, 1))
    assert key != backbone_key("ViT-B-32", True, 224, str(weights), seed=1)     # touched: loaded again
    weights.write_bytes(b"123456")
    assert backbone_key("ViT-B-32", True, 224, str(weights), 1).weights_size == 6
    assert backbone_key("tiny", False, 32, None, 1) != backbone_key("tiny", False, 32, None, 2)


def test_the_cache_hands_out_copies_and_only_when_enabled(monkeypatch):
    import torch

    from harma.model import cache

    built = []

    def build():
        built.append(1)
        return torch.nn.Linear(2, 2)

    key = cache.backbone_key("tiny", False, 32, None, 1)
    cache.clear()
    monkeypatch.delenv(cache.ENV, raising=False)
    cache.cached_backbone(key, build), cache.cached_backbone(key, build)
    assert len(built) == 2 and cache.stats.hits == 0
    monkeypatch.setenv(cache.ENV, "1")
    one, two = cache.cached_backbone(key, build), cache.cached_backbone(key, build)
    assert len(built) == 3 and (cache.stats.hits, cache.stats.misses) == (1, 1)
    assert one is not two and torch.equal(one.weight, two.weight)
    with torch.no_grad():
        two.weight.add_(1.0)                               # a trial's changes never reach the cached copy
    assert torch.equal(cache.cached_backbone(key, build).weight, one.weight)
    cache.clear()


def test_trials_get_the_cache_the_thread_timeout_and_a_compile_cache(scratch, monkeypatch):
    from harma.study.parse import load_study

    monkeypatch.chdir(scratch)
    from harma.tune.cluster import trial_env

    (scratch / "studies" / "env.yaml").write_text(tiny_study("env", "ablation", 1, ARMS))
    study = load_study(scratch / "studies" / "env.yaml")
    env = trial_env(study)
    cache = str(scratch.resolve() / "results" / "compile-cache" / "env")
    assert env == {"RAY_CHDIR_TO_TRIAL_DIR": "0", "TUNE_FUNCTION_THREAD_TIMEOUT_S": "60",
                   "HARMA_BACKBONE_CACHE": "1", "TORCHINDUCTOR_CACHE_DIR": cache + "/inductor",
                   "TRITON_CACHE_DIR": cache + "/triton"}
    assert "HARMA_BACKBONE_CACHE" not in trial_env(load_study_with_workers(scratch, 2))


def load_study_with_workers(scratch: Path, workers: int):
    from harma.study.parse import load_study

    text = tiny_study("ddp", "ablation", 1, ARMS).replace("workers_per_trial: 1", f"workers_per_trial: {workers}")
    (scratch / "studies" / "ddp.yaml").write_text(text)
    return load_study(scratch / "studies" / "ddp.yaml")
