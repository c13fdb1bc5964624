"""Embed an evaluation split and score it: images and captions are embedded in shards across ranks (each rank a
contiguous slice, padded to equal size, gathered), under bf16 autocast when `train.precision=bf16` (embeddings
returned in fp32), then cosine scores go to `retrieval_metrics`.

A run builds its `Encoders` (the model's image and text encoders as `harma.compiled.FastCall`s, compiled as
`train.compile` resolves on the device) and one `SplitEvaluator` per split, whose image loader is created once
(persistent workers) and reused every epoch; images arrive as uint8 and are normalised on the device.  Compiled
encoders see static shapes only: the last batch is padded with zeros to `train.eval_batch_size` and its
embeddings cut back, and each batch's embeddings are copied out before the next call (a CUDA graph's next replay
overwrites its output).  Eager encoders (the CPU default) run the batches as they come.  The loader's
`data.num_workers` workers persist across epochs and stop on `close()` (a reused trial process runs the next
trial right after).  `evaluate_split` is the one-shot form (`harma eval`, tests)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from harma import distributed as dist_utils
from harma.compiled import IMAGE_ENCODER, TEXT_ENCODER, FastCall, resolve_mode
from harma.config import RunConfig
from harma.data.loaders import close_loader, worker_options
from harma.data.transforms import PixelNormalizer
from harma.metrics import retrieval_metrics
from harma.runtime import precision_context


def _shard(n: int) -> range:
    world, rank = dist_utils.world_size(), dist_utils.rank()
    per = -(-n // world)
    return range(rank * per, min(n, (rank + 1) * per))


def _gather_shards(local: torch.Tensor, n: int) -> torch.Tensor:
    world = dist_utils.world_size()
    if world == 1:
        return local
    per = -(-n // world)
    padded = local.new_zeros((per, local.shape[1]))
    padded[: len(local)] = local
    return dist_utils.gather_no_grad(padded)[:n]


class Encoders:
    """The model's image and text encoders as this process runs them (eager, or compiled on padded batches)."""

    def __init__(self, model, cfg: RunConfig, device: torch.device) -> None:
        self.mode = mode = resolve_mode(cfg.train.compile, device)
        self.model, self.device, self.precision = model, device, cfg.train.precision
        self.image, self.text = FastCall(IMAGE_ENCODER, model, mode), FastCall(TEXT_ENCODER, model, mode)
        self.pads = mode != "off"

    def embed(self, call: FastCall, batch: torch.Tensor, size: int) -> torch.Tensor:
        """fp32 embeddings of `batch` (a fresh tensor); compiled calls get the batch padded to `size` rows."""
        n = len(batch)
        if self.pads and n < size:
            batch = torch.cat([batch, batch.new_zeros((size - n, *batch.shape[1:]))])

        def work(encode) -> torch.Tensor:
            with precision_context(self.device, self.precision):
                return encode(batch)[:n].to(torch.float32, copy=True)

        return call.run(work)


def _image_loader(images: Dataset, cfg: RunConfig, device: torch.device) -> DataLoader:
    return DataLoader(Subset(images, list(_shard(len(images)))), batch_size=cfg.train.eval_batch_size,
                      **worker_options(cfg.data, device))


class SplitEvaluator:
    """R@1/5/10 both ways and mR of one EvalSplit, its image loader created once and kept across epochs."""

    def __init__(self, split, encoders: Encoders, cfg: RunConfig) -> None:
        self.split, self.encoders, self.cfg = split, encoders, cfg
        self.loader = _image_loader(split.images, cfg, encoders.device)
        self.pixels = PixelNormalizer(encoders.device)

    @torch.no_grad()
    def embed_images(self) -> torch.Tensor:
        enc, size = self.encoders, self.cfg.train.eval_batch_size
        parts = [enc.embed(enc.image, self.pixels(batch.to(enc.device, non_blocking=True)), size)
                 for batch in self.loader]
        return _gather_shards(_joined(parts, enc), len(self.split.images))

    @torch.no_grad()
    def embed_texts(self) -> torch.Tensor:
        enc, size, tokens = self.encoders, self.cfg.train.eval_batch_size, self.split.tokens
        shard = _shard(len(tokens))
        local = tokens[shard.start: shard.stop]
        parts = [enc.embed(enc.text, local[i: i + size].to(enc.device), size) for i in range(0, len(local), size)]
        return _gather_shards(_joined(parts, enc), len(tokens))

    @torch.no_grad()
    def run(self) -> dict[str, float]:
        model = self.encoders.model
        was_training = model.training
        model.eval()
        img, txt = self.embed_images(), self.embed_texts()
        model.train(was_training)
        return retrieval_metrics((img @ txt.t()).cpu(), self.split.img2txt, ties=self.cfg.eval.ties)

    def close(self) -> None:
        """Stop the image loader's persistent workers now."""
        close_loader(self.loader)


def _joined(parts: Sequence[torch.Tensor], enc: Encoders) -> torch.Tensor:
    if parts:
        return torch.cat(parts)
    return torch.zeros(0, enc.model.clip.visual.output_dim, device=enc.device)


def evaluate_split(model, split, cfg: RunConfig, device: torch.device) -> dict[str, float]:
    """R@1/5/10 both ways and mR on one EvalSplit (val or test), once."""
    evaluator = SplitEvaluator(split, Encoders(model, cfg, device), cfg)
    try:
        return evaluator.run()
    finally:
        evaluator.close()
