"""Embed an evaluation split and score it: images and captions are embedded in shards across ranks (each
rank a contiguous slice, padded to equal size, gathered), under bf16 autocast when `train.precision=bf16`
(embeddings returned in fp32), then cosine scores go to `retrieval_metrics`."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Subset

from harma import distributed as dist_utils
from harma.config import RunConfig
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


@torch.no_grad()
def embed_images(model, images, cfg: RunConfig, device: torch.device) -> torch.Tensor:
    shard = _shard(len(images))
    loader = DataLoader(Subset(images, list(shard)), batch_size=cfg.train.eval_batch_size,
                        num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda")
    dim = model.clip.visual.output_dim
    with precision_context(device, cfg.train.precision):
        parts = [model.encode_image(batch.to(device, non_blocking=True)).float() for batch in loader]
    local = torch.cat(parts) if parts else torch.zeros(0, dim, device=device)
    return _gather_shards(local, len(images))


@torch.no_grad()
def embed_texts(model, tokens: torch.Tensor, cfg: RunConfig, device: torch.device) -> torch.Tensor:
    shard = _shard(len(tokens))
    local_tokens = tokens[shard.start: shard.stop]
    with precision_context(device, cfg.train.precision):
        parts = [model.encode_text(local_tokens[i: i + cfg.train.eval_batch_size].to(device)).float()
                 for i in range(0, len(local_tokens), cfg.train.eval_batch_size)]
    dim = model.clip.visual.output_dim
    local = torch.cat(parts) if parts else torch.zeros(0, dim, device=device)
    return _gather_shards(local, len(tokens))


@torch.no_grad()
def evaluate_split(model, split, cfg: RunConfig, device: torch.device) -> dict[str, float]:
    """R@1/5/10 both ways and mR on one EvalSplit (val or test)."""
    was_training = model.training
    model.eval()
    img = embed_images(model, split.images, cfg, device)
    txt = embed_texts(model, split.tokens, cfg, device)
    model.train(was_training)
    return retrieval_metrics((img @ txt.t()).cpu(), split.img2txt, ties=cfg.eval.ties)
