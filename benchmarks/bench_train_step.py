"""CPU train-step time of the HarMA-injected ViT-B-32 (random init) against the frozen CLIP's forward pass.

Builds `harma.build_model` from the default RunConfig with `model.arch=ViT-B-32` (adapters in both towers,
share=text, r=128) and times one training step at batch 8: forward both towers, `harma_loss` (contrastive +
weighted triplet, the default weights), backward, AdamW step (the trainer's parameter groups).  The same step
is also timed on a model built without the attention-layout hook (`harma.model.layout`), which is the step as
d28a632 ran it, so the hook's gain is measured in one process.  For reference it times forward-only (no grad,
eval) passes of the frozen baseline (`adapter.towers=none`: the plain CLIP) and of the injected model.  All are
interleaved, one of each per round, and each figure is the median over `--steps` rounds after `--warmup`
warm-up rounds, so a change in machine load hits all alike.
Inputs are random 224x224 images and tokenised captions, 2 captions per image id.
Run: `python benchmarks/bench_train_step.py [--batch 8] [--steps 5] [--warmup 1] [--threads N]`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from harma.config import RunConfig, apply_overrides, trains_temperature
from harma.losses import harma_loss
from harma.model.build import HarmaModel, build_clip, build_model, tokenizer_for
from harma.model.freeze import freeze_all_but_adapters
from harma.model.inject import inject_adapters
from harma.train_step import param_groups


def make_batch(cfg: RunConfig, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 224, 224, generator=gen)
    captions = [f"many buildings and green trees are around a {w} near a river" for w in
                ("playground", "parking lot", "church", "stadium", "farmland", "port", "school", "bridge")]
    tokens = tokenizer_for(cfg)([captions[i % len(captions)] for i in range(batch)])
    ids = torch.arange(batch) // 2
    return images, tokens, ids


def interleaved_medians(fns: dict, steps: int, warmup: int) -> dict[str, tuple[float, list[float]]]:
    """Run every fn once per round (so load changes hit all alike); median per fn over the timed rounds."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + steps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), t) for name, t in times.items()}


def build_without_layout_hook(cfg: RunConfig) -> HarmaModel:
    """build_model's steps minus `seq_first_self_attention`: the model as d28a632 built it."""
    clip = build_clip(cfg.model.arch, cfg.model.quick_gelu)
    inject_adapters(clip, cfg.adapter)
    model = HarmaModel(clip, cfg.loss.temp_init, cfg.loss.temp_min, train_temperature=trains_temperature(cfg))
    freeze_all_but_adapters(model)
    return model


def step_fn(model: HarmaModel, cfg: RunConfig, images, tokens, ids):
    optimizer = torch.optim.AdamW(param_groups(model.adapter_params(), cfg.optim.weight_decay), lr=cfg.optim.lr,
                                  betas=(cfg.optim.beta1, cfg.optim.beta2), eps=cfg.optim.eps)

    def step() -> None:
        model.train()
        img, txt, temp = model(images, tokens)
        loss = harma_loss(img, txt, temp, ids, None, cfg.loss)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def counts(model: HarmaModel) -> tuple[int, int]:
    return (sum(p.numel() for p in model.adapter_params().values()),
            sum(p.numel() for p in model.parameters()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = apply_overrides(RunConfig(), {"model.arch": "ViT-B-32", "train.device": "cpu"})
    images, tokens, ids = make_batch(cfg, args.batch)

    base = build_model(apply_overrides(cfg, {"adapter.towers": "none"})).eval()
    base_params = counts(base)
    model = build_model(cfg)
    trainable, total = counts(model)
    torch.manual_seed(0)
    unhooked = build_without_layout_hook(cfg)

    def forward_only(m: torch.nn.Module) -> None:
        m.eval()
        with torch.no_grad():
            m(images, tokens)

    timed = interleaved_medians({"base": lambda: forward_only(base), "inj": lambda: forward_only(model),
                                 "train": step_fn(model, cfg, images, tokens, ids),
                                 "old": step_fn(unhooked, cfg, images, tokens, ids)}, args.steps, args.warmup)
    (base_fwd, base_all), (inj_fwd, inj_all), (train_s, train_all) = timed["base"], timed["inj"], timed["train"]
    old_s, old_all = timed["old"]

    print(f"ViT-B-32 random init, batch {args.batch}, CPU, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}; median of {args.steps} rounds after {args.warmup} warm-up round(s), the three "
          f"measurements interleaved in each round; load average at end {os.getloadavg()[0]:.2f}\n")
    print("| what | seconds / step (median) | min | pairs / s (median) | trainable params | total params | "
          "all timings (s) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    rows = [("frozen baseline (plain CLIP), forward only, no grad", base_fwd, base_all, base_params),
            ("HarMA-injected, forward only, no grad", inj_fwd, inj_all, (trainable, total)),
            ("HarMA-injected, train step (fwd + harma_loss + bwd + AdamW)", train_s, train_all, (trainable, total)),
            ("same step without the layout hook (d28a632)", old_s, old_all, (trainable, total))]
    for name, sec, all_s, (tr, tot) in rows:
        print(f"| {name} | {sec:.3f} | {min(all_s):.3f} | {args.batch / sec:.1f} | {tr:,} | {tot:,} | "
              f"{', '.join(f'{t:.3f}' for t in all_s)} |")
    print(f"\ntrainable share: {100 * trainable / total:.2f}% of {total:,}; train step / baseline forward = "
          f"{train_s / base_fwd:.1f}x; step speed-up over d28a632's layout = {old_s / train_s:.2f}x")


if __name__ == "__main__":
    main()
