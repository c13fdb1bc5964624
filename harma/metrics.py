"""Retrieval recalls and mR (HARMA.md §7) under an explicit tie policy, from one chunked pass over the scores.

`scores` is [N_img, N_txt] cosine similarity.  Each query, an image's row (i2t) or a caption's column (t2i), is
reduced to three counts at its own score s* (the image's best own caption, the caption's own image): `above`,
the items scored strictly above s*; `tied`, the non-own items scored exactly s*; `own_tied`, the own items
scored exactly s* (at least 1).  Its 0-based rank is above + X, with X the number of tied non-own items placed
before the first tied own one.  The tie policy fixes X: `optimistic` X = 0 (every tie won), `pessimistic`
X = tied (every tie lost) and `expected`, the default, averages over uniformly random orders of the tied items,
which is what an arbitrary sort order such as the authors' per-row argsort amounts to.  On tie-free scores the
three agree with that argsort.  Identical captions embed identically, so exact ties are real; `r_mean_tie_gap`
(optimistic mR minus pessimistic mR) says how much they can move mR.  The pass walks blocks of at most 255 rows,
compares each block with both directions' thresholds into padded boolean buffers and counts the booleans eight
at a time as uint64 words, so the extra memory is a few block-sized buffers whatever N_img is.
"""
from __future__ import annotations

import sys
from typing import Any, NamedTuple, Sequence

import numpy as np

METRIC_KEYS = ("txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean")
TIE_GAP_KEY = "r_mean_tie_gap"
REPORTED_KEYS = METRIC_KEYS + (TIE_GAP_KEY,)
TIE_POLICIES = ("expected", "optimistic", "pessimistic")
RECALL_AT = (1, 5, 10)
BLOCK_ROWS = 128
MAX_BLOCK_ROWS = 255        # a byte lane of the column counts holds at most 255
_BYTE_SUM = np.uint64(0x0101010101010101)
_TOP_BYTE = np.uint64(56)


class TieCounts(NamedTuple):
    """Per query: items strictly above its own score, non-own items tied with it, own items tied with it."""
    above: np.ndarray
    tied: np.ndarray
    own_tied: np.ndarray


def _as_array(scores: Any) -> np.ndarray:
    """A float32/float64 numpy view of a torch tensor or array; other dtypes are widened exactly, GPUs copied."""
    torch = sys.modules.get("torch")    # a tensor implies torch is loaded; reading results need not load it
    if torch is not None and isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu()
        if scores.dtype not in (torch.float32, torch.float64):
            scores = scores.double()
        return scores.numpy()
    scores = np.asarray(scores)
    return scores if scores.dtype in (np.float32, np.float64) else scores.astype(np.float64)


def _own_pairs(img2txt: Sequence[Sequence[int]], n_txt: int) -> tuple[np.ndarray, np.ndarray]:
    """(image, caption) of every own pair, checked: each caption belongs to exactly one image, no image is bare."""
    lengths = np.array([len(caps) for caps in img2txt], dtype=np.int64)
    if (lengths == 0).any():
        raise ValueError(f"img2txt: image {int(np.flatnonzero(lengths == 0)[0])} has no captions")
    txt = np.fromiter((t for caps in img2txt for t in caps), dtype=np.int64, count=int(lengths.sum()))
    if len(txt) and (txt.min() < 0 or txt.max() >= n_txt):
        raise ValueError(f"img2txt: caption index out of range [0, {n_txt})")
    per_caption = np.bincount(txt, minlength=n_txt)
    if (per_caption == 0).any():
        raise ValueError(f"img2txt: caption {int(np.flatnonzero(per_caption == 0)[0])} belongs to no image")
    if (per_caption > 1).any():
        raise ValueError(f"img2txt: caption {int(np.flatnonzero(per_caption > 1)[0])} belongs to several images")
    return np.repeat(np.arange(len(img2txt)), lengths), txt


def _row_counts(flags: np.ndarray) -> np.ndarray:
    """Trues per row of a [rows, 8w] bool array: a word of 0/1 bytes holds (word · 0x0101…01) >> 56 of them."""
    words = flags.view(np.uint64)
    return ((words * _BYTE_SUM) >> _TOP_BYTE).sum(axis=1).astype(np.int64)


def _column_counts(flags: np.ndarray) -> np.ndarray:
    """Trues per column of ≤ 255 rows: summing the uint64 words adds every byte lane on its own, without carries."""
    return flags.view(np.uint64).sum(axis=0).view(np.uint8)


def _thresholds(scores: np.ndarray, img: np.ndarray, txt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(best own score per image, own captions tied at it per image, own image's score per caption)."""
    own = scores[img, txt]
    if np.isnan(own).any():
        first = int(np.flatnonzero(np.isnan(own))[0])
        raise ValueError(f"scores: NaN at image {int(img[first])}, its caption {int(txt[first])}")
    best = np.full(scores.shape[0], -np.inf, dtype=scores.dtype)
    np.maximum.at(best, img, own)
    own_tied = np.bincount(img, weights=own == best[img], minlength=scores.shape[0]).astype(np.int64)
    col_thr = np.empty(scores.shape[1], dtype=scores.dtype)
    col_thr[txt] = own
    return best, own_tied, col_thr


def _count_pass(scores: np.ndarray, row_thr: np.ndarray, col_thr: np.ndarray,
                rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(> row_thr, == row_thr) per row and (> col_thr, == col_thr) per column, one read of `scores`."""
    n_img, n_txt = scores.shape
    padded = -(-n_txt // 8) * 8
    above_row, equal_row = np.empty(n_img, np.int64), np.empty(n_img, np.int64)
    above_col, equal_col = np.zeros(padded, np.int64), np.zeros(padded, np.int64)
    gt_r, eq_r, gt_c, eq_c = (np.zeros((rows, padded), dtype=bool) for _ in range(4))
    for start in range(0, n_img, rows):
        block = scores[start: start + rows]
        n, thr = len(block), row_thr[start: start + rows, None]
        np.greater(block, thr, out=gt_r[:n, :n_txt])
        np.equal(block, thr, out=eq_r[:n, :n_txt])
        np.greater(block, col_thr, out=gt_c[:n, :n_txt])
        np.equal(block, col_thr, out=eq_c[:n, :n_txt])
        above_row[start: start + n] = _row_counts(gt_r[:n])
        equal_row[start: start + n] = _row_counts(eq_r[:n])
        above_col += _column_counts(gt_c[:n])
        equal_col += _column_counts(eq_c[:n])
    return above_row, equal_row, above_col[:n_txt], equal_col[:n_txt]


def tie_counts(scores: Any, img2txt: Sequence[Sequence[int]],
               chunk: int = BLOCK_ROWS) -> tuple[TieCounts, TieCounts]:
    """(i2t, t2i) counts from one pass over blocks of `chunk` rows (capped at 255)."""
    scores = _as_array(scores)
    if scores.ndim != 2 or scores.shape[0] != len(img2txt):
        raise ValueError(f"scores: expected [N_img={len(img2txt)}, N_txt], got {scores.shape}")
    best, own_tied, col_thr = _thresholds(scores, *_own_pairs(img2txt, scores.shape[1]))
    rows = max(1, min(int(chunk), MAX_BLOCK_ROWS))
    above_row, equal_row, above_col, equal_col = _count_pass(scores, best, col_thr, rows)
    i2t = TieCounts(above_row, equal_row - own_tied, own_tied)
    t2i = TieCounts(above_col, equal_col - 1, np.ones(len(col_thr), np.int64))
    return i2t, t2i


def _prob_x_at_least(tied: np.ndarray, own_tied: np.ndarray, j: np.ndarray) -> np.ndarray:
    """P(X ≥ j) = Π_{l<j} (T − l) / (T + m − l): the first j of the T + m tied items are all non-own."""
    steps = np.arange(int(j.max(initial=0)))
    t, m = tied[:, None].astype(np.float64), own_tied[:, None].astype(np.float64)
    factors = np.where(steps < j[:, None], np.maximum(t - steps, 0) / (t + m - steps).clip(min=1), 1.0)
    return factors.prod(axis=1)


def hit_probability(counts: TieCounts, k: int, ties: str = "expected") -> np.ndarray:
    """P(rank < k) = P(X < k − above) per query, X drawn by the tie policy."""
    if ties == "pessimistic":
        return (counts.above + counts.tied < k).astype(np.float64)
    hit = (counts.above < k).astype(np.float64)
    if ties == "optimistic":
        return hit
    if ties != "expected":
        raise ValueError(f"ties: expected one of {TIE_POLICIES}, got {ties!r}")
    open_ties = np.flatnonzero((counts.tied > 0) & (counts.above < k))   # the only queries X can move
    j = k - counts.above[open_ties]
    hit[open_ties] = 1.0 - _prob_x_at_least(counts.tied[open_ties], counts.own_tied[open_ties], j)
    return hit


def _recalls(i2t: TieCounts, t2i: TieCounts, ties: str) -> dict[str, float]:
    """Percent R@1/5/10 both ways and r_mean, their mean, for one tie policy."""
    out = {}
    for k in RECALL_AT:
        out[f"txt_r{k}"] = 100.0 * float(np.mean(hit_probability(i2t, k, ties)))
        out[f"img_r{k}"] = 100.0 * float(np.mean(hit_probability(t2i, k, ties)))
    out["r_mean"] = sum(out[k] for k in METRIC_KEYS[:6]) / 6
    return {k: out[k] for k in METRIC_KEYS}


def retrieval_metrics(scores: Any, img2txt: Sequence[Sequence[int]],
                      ties: str = "expected") -> dict[str, float]:
    """METRIC_KEYS under `ties`, then r_mean_tie_gap = optimistic r_mean − pessimistic r_mean."""
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties: expected one of {TIE_POLICIES}, got {ties!r}")
    i2t, t2i = tie_counts(scores, img2txt)
    out = _recalls(i2t, t2i, ties)
    gap = _recalls(i2t, t2i, "optimistic")["r_mean"] - _recalls(i2t, t2i, "pessimistic")["r_mean"]
    return {**out, TIE_GAP_KEY: gap}
