"""Retrieval recalls and mR (HARMA.md §7), vectorised and chunked.

`scores` is [N_img, N_txt] cosine similarity.  The i2t rank of image i is the number of captions scored
strictly above its best-scoring own caption (so its best own caption's 0-based rank); the t2i rank of caption
t is the number of images scored strictly above its own image.  Rows/columns are processed in chunks so
memory stays O(chunk × N) even at 10× RSICD test size.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

METRIC_KEYS = ("txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean")


def _owner_index(img2txt: Sequence[Sequence[int]], n_txt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(txt2img [N_txt], flat (image, caption) pairs as two index tensors)."""
    owners = torch.full((n_txt,), -1, dtype=torch.long)
    img_idx, txt_idx = [], []
    for i, caps in enumerate(img2txt):
        img_idx.extend([i] * len(caps))
        txt_idx.extend(caps)
    img_t, txt_t = torch.tensor(img_idx, dtype=torch.long), torch.tensor(txt_idx, dtype=torch.long)
    if len(txt_t) and (txt_t.min() < 0 or txt_t.max() >= n_txt):
        raise ValueError(f"img2txt: caption index out of range [0, {n_txt})")
    owners[txt_t] = img_t
    if (owners < 0).any():
        raise ValueError(f"img2txt: caption {int((owners < 0).nonzero()[0])} belongs to no image")
    return owners, torch.stack([img_t, txt_t])


def i2t_ranks(scores: torch.Tensor, img2txt: Sequence[Sequence[int]], chunk: int = 1024) -> torch.Tensor:
    return _i2t_ranks(scores, _owner_index(img2txt, scores.shape[1])[1], chunk)


def t2i_ranks(scores: torch.Tensor, img2txt: Sequence[Sequence[int]], chunk: int = 4096) -> torch.Tensor:
    return _t2i_ranks(scores, _owner_index(img2txt, scores.shape[1])[0], chunk)


def _i2t_ranks(scores: torch.Tensor, pairs: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    n_img = scores.shape[0]
    best_own = torch.full((n_img,), -float("inf"), dtype=scores.dtype)
    best_own = best_own.scatter_reduce(0, pairs[0], scores[pairs[0], pairs[1]], reduce="amax")
    ranks = torch.empty(n_img, dtype=torch.long)
    for start in range(0, n_img, chunk):
        block = scores[start: start + chunk]
        ranks[start: start + chunk] = (block > best_own[start: start + chunk, None]).sum(dim=1)
    return ranks


def _t2i_ranks(scores: torch.Tensor, owners: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    n_txt = scores.shape[1]
    ranks = torch.empty(n_txt, dtype=torch.long)
    for start in range(0, n_txt, chunk):
        block = scores[:, start: start + chunk]
        own = block.gather(0, owners[start: start + chunk][None, :])
        ranks[start: start + chunk] = (block > own).sum(dim=0)
    return ranks


def retrieval_metrics(scores: torch.Tensor | np.ndarray, img2txt: Sequence[Sequence[int]]) -> dict[str, float]:
    """R@1/5/10 both directions (percent) and their mean `r_mean`."""
    scores = torch.as_tensor(scores).detach().cpu().float()
    if scores.ndim != 2 or scores.shape[0] != len(img2txt):
        raise ValueError(f"scores: expected [N_img={len(img2txt)}, N_txt], got {tuple(scores.shape)}")
    owners, pairs = _owner_index(img2txt, scores.shape[1])
    r_i2t, r_t2i = _i2t_ranks(scores, pairs), _t2i_ranks(scores, owners)
    out = {}
    for k in (1, 5, 10):
        out[f"txt_r{k}"] = 100.0 * (r_i2t < k).double().mean().item()
        out[f"img_r{k}"] = 100.0 * (r_t2i < k).double().mean().item()
    out["r_mean"] = sum(out[k] for k in METRIC_KEYS[:6]) / 6
    return {k: out[k] for k in METRIC_KEYS}
