"""HarMA's losses as pure functions of (already gathered) unit-norm embeddings (HARMA.md §6).

No torch.distributed here: the trainer gathers across ranks first (harma.distributed) and passes the global
batch.  `contrastive_loss` is soft multi-positive InfoNCE over image ids, `weighted_triplet_loss` the focal
hinge summed over the whole batch matrix, `affiliation_loss` a contrastive pull toward the other modality's
scene-class centres, and `harma_loss` mixes them with LossConfig weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harma.config import LossConfig


def _soft_targets(ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    same = (ids[:, None] == ids[None, :]).to(dtype)
    return same / same.sum(dim=1, keepdim=True)


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, temp: torch.Tensor | float,
                     ids: torch.Tensor | None = None) -> torch.Tensor:
    """(CE_rows(I·Tᵀ/temp, P) + CE_rows(T·Iᵀ/temp, P)) / 2; P soft multi-positive by image id, else identity."""
    logits = img @ txt.t() / temp
    if ids is None:
        targets = torch.eye(len(img), device=img.device, dtype=logits.dtype)
    else:
        targets = _soft_targets(ids, logits.dtype)
    i2t = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    t2i = -(targets * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
    return (i2t + t2i) / 2


def weighted_triplet_loss(img: torch.Tensor, txt: torch.Tensor, margin: float = 0.2, gamma: float = 2.0,
                          max_violation: bool = False) -> torch.Tensor:
    """Focal-weighted hinge on raw cosine: (Σ w_s c_s + Σ w_im c_im) / 2 with w = (1 - exp(-c))^γ."""
    scores = img @ txt.t()
    diagonal = scores.diag()
    eye = torch.eye(len(scores), dtype=torch.bool, device=scores.device)
    cost_s = (margin + scores - diagonal[:, None]).clamp(min=0).masked_fill(eye, 0)   # image i vs caption j
    cost_im = (margin + scores - diagonal[None, :]).clamp(min=0).masked_fill(eye, 0)  # caption j vs image i
    if max_violation:
        cost_s = cost_s.max(dim=1).values
        cost_im = cost_im.max(dim=0).values
    w_s = (1 - torch.exp(-cost_s)) ** gamma
    w_im = (1 - torch.exp(-cost_im)) ** gamma
    return ((w_s * cost_s).sum() + (w_im * cost_im).sum()) / 2


def class_ranks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(each sample's class index among the classes present, in ascending label order [B]; how many classes
    are present, a 0-d tensor), with fixed shapes and no host read: what `torch.unique(labels,
    return_inverse=True)` gives as its inverse and `len(classes)`, without the device-to-host copy."""
    same = labels[:, None] == labels[None, :]
    earlier = torch.ones_like(same).tril(-1)                      # [i, j]: j comes before i
    first = ~(same & earlier).any(dim=1)                          # i is its class's first sample
    smaller = labels[None, :] < labels[:, None]                   # [i, j]: label j < label i
    return (smaller & first[None, :]).sum(dim=1), first.sum()


def class_centres(emb: torch.Tensor, ranks: torch.Tensor) -> torch.Tensor:
    """[B, D]: row c is the unit-norm mean embedding of the c-th class present (`class_ranks`); the rows past
    the number of classes present are zero.  Same sums, in the same order, as a [C, D] index_add."""
    sums = torch.zeros(len(ranks), emb.shape[1], device=emb.device, dtype=emb.dtype)
    return F.normalize(sums.index_add(0, ranks, emb), dim=-1)


def _centre_ce(emb: torch.Tensor, centres: torch.Tensor, ranks: torch.Tensor, absent: torch.Tensor,
               temp: float) -> torch.Tensor:
    """Cross-entropy of each embedding against the present classes' centres (absent columns are -inf: they
    add exactly 0 to the softmax and get no gradient)."""
    logits = (emb @ centres.t() / temp).masked_fill(absent, float("-inf"))
    return F.cross_entropy(logits, ranks)


def affiliation_loss(img: torch.Tensor, txt: torch.Tensor, labels: torch.Tensor, temp: float = 0.1) -> torch.Tensor:
    """Pull each embedding toward its scene class's centre in the OTHER modality, contrastively over the
    centres of the classes present in the batch; mean of both directions.  Zero when only one class is present.
    Fixed shapes throughout (the class count stays on the device), so a training step never waits on it."""
    ranks, n_classes = class_ranks(labels)
    absent = torch.arange(len(labels), device=labels.device) >= n_classes
    img_to_txt = _centre_ce(img, class_centres(txt, ranks), ranks, absent, temp)
    txt_to_img = _centre_ce(txt, class_centres(img, ranks), ranks, absent, temp)
    return torch.where(n_classes < 2, img.sum() * 0 + txt.sum() * 0, (img_to_txt + txt_to_img) / 2)


def harma_loss(img: torch.Tensor, txt: torch.Tensor, temp: torch.Tensor, ids: torch.Tensor,
               labels: torch.Tensor | None, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """{"loss": weighted total, "contr", "triplet", "affil"} (only the terms with weight > 0)."""
    parts: dict[str, torch.Tensor] = {}
    if cfg.w_contr > 0:
        parts["contr"] = contrastive_loss(img, txt, temp, ids)
    if cfg.w_triplet > 0:
        parts["triplet"] = weighted_triplet_loss(img, txt, cfg.margin, cfg.gamma, cfg.max_violation)
    if cfg.w_affil > 0:
        if labels is None:
            raise ValueError("loss.w_affil > 0 needs scene labels (the train json's `label`)")
        parts["affil"] = affiliation_loss(img, txt, labels, cfg.affil_temp)
    weights = {"contr": cfg.w_contr, "triplet": cfg.w_triplet, "affil": cfg.w_affil}
    parts["loss"] = sum(weights[k] * v for k, v in parts.items())
    return parts
