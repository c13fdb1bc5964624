"""GPU train-step throughput of the HarMA-injected ViT-B-32 (random init) in fp32 and in bf16 autocast.

One training step as `harma.train` does it: forward both towers (under bf16 autocast for the bf16 row, as
`train.precision=bf16` does), `harma_loss` on float32 embeddings (contrastive + weighted triplet), backward,
AdamW step on the trainer's parameter groups.  Batch 214 (the authors' per-GPU batch), random 224x224 images
and tokenised captions, 2 captions per image id.  Reports the median step time over `--steps` timed steps after
`--warmup` warm-up steps (CUDA-synchronised), pairs/s, and peak GPU memory (torch.cuda.max_memory_allocated,
reset before each precision).  Needs CUDA: without it, prints why and exits with status 2.
Run from the repo root after `pip install -e .`: `python benchmarks/bench_gpu_step.py [--batch 214]`
(`benchmarks/gpu_check.sh` runs it with a time limit).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        built = torch.version.cuda or "none (CPU-only build)"
        print(f"bench_gpu_step: CUDA is not available on this machine (torch {torch.__version__}, CUDA build: "
              f"{built}, devices: {torch.cuda.device_count()}); this benchmark needs one NVIDIA GPU. "
              f"Nothing was measured.", file=sys.stderr)
        sys.exit(2)
    return torch.device("cuda", 0)


def measure(precision: str, cfg, images: torch.Tensor, tokens: torch.Tensor, ids: torch.Tensor, steps: int,
            warmup: int, device: torch.device) -> tuple[str, float, float, float, int, int]:
    """(precision, median s/step, min, max, peak bytes, trainable params) for a freshly built model."""
    from harma.losses import harma_loss
    from harma.model.build import build_model
    from harma.train import param_groups

    model = build_model(cfg).to(device).train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr,
                                  betas=(cfg.optim.beta1, cfg.optim.beta2), eps=cfg.optim.eps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16")

    def step() -> torch.Tensor:
        with autocast:
            img, txt, temp = model(images, tokens)
        loss = harma_loss(img.float(), txt.float(), temp.float(), ids, None, cfg.loss)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{precision}: loss became {loss.item()}")
    peak = torch.cuda.max_memory_allocated(device)
    return precision, statistics.median(times), min(times), max(times), peak, trainable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=214)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    device = require_cuda()

    from harma.config import RunConfig, apply_overrides
    from harma.model.build import tokenizer_for

    torch.manual_seed(0)
    cfg = apply_overrides(RunConfig(), {"model.arch": "ViT-B-32", "train.device": "cuda"})
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, 224, 224, generator=gen).to(device)
    words = ("playground", "parking lot", "church", "stadium", "farmland", "port", "school", "bridge")
    tokens = tokenizer_for(cfg)([f"many buildings and green trees are around a {words[i % len(words)]} near "
                                 f"a river" for i in range(args.batch)]).to(device)
    ids = (torch.arange(args.batch) // 2).to(device)

    rows = [measure(precision, cfg, images, tokens, ids, args.steps, args.warmup, device)
            for precision in args.precisions.split(",")]

    name = torch.cuda.get_device_name(device)
    print(f"{name}, torch {torch.__version__} (CUDA {torch.version.cuda}), ViT-B-32 random init + HarMA adapters, "
          f"batch {args.batch}, median of {args.steps} steps after {args.warmup} warm-up; TF32 matmul "
          f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}\n")
    print("| precision | s / step (median) | min / max | pairs / s | peak GPU memory | trainable params |")
    print("|---|---:|---:|---:|---:|---:|")
    for precision, med, lo, hi, peak, trainable in rows:
        label = "bf16 autocast" if precision == "bf16" else precision
        print(f"| {label} | {med:.4f} | {lo:.4f} / {hi:.4f} | {args.batch / med:,.0f} | {peak / 1024**3:.2f} GiB | "
              f"{trainable:,} |")


if __name__ == "__main__":
    main()
