"""Time `harma.metrics.retrieval_metrics` against a naive per-row sort-and-search reference, and its memory at 10x.

At RSICD test size (1,093 images x 5,465 captions, 5 contiguous captions per image) the scores are random with
some signal (own pairs get +1.5 on N(0, 1) noise), then rank-transformed to distinct values so a descending
argsort has no ties and the naive reference is unambiguous.  The reference, written here, argsorts every image's
row (best rank among its 5 captions) and every caption's column (rank of its image), then takes the recalls.
Both are timed (median of repeats); the two metric dicts must be identical.  Then retrieval_metrics runs once at
10x that size (10,930 x 54,650 float32, about 2.4 GB, filled in place) and the peak RSS before and after the
call (resource.getrusage) shows how much the chunked ranking adds on top of the score matrix itself.
Run: `python benchmarks/bench_metrics.py [--repeats 5] [--naive-repeats 3] [--no-big] [--threads N]`.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np
import torch

from harma.metrics import METRIC_KEYS, retrieval_metrics

N_IMG, PER_IMG = 1093, 5
SIGNAL = 1.5


def img2txt_for(n_img: int) -> list[list[int]]:
    return [list(range(PER_IMG * i, PER_IMG * i + PER_IMG)) for i in range(n_img)]


def distinct_scores(n_img: int, seed: int = 0) -> np.ndarray:
    """N(0,1) noise + SIGNAL on own pairs, rank-transformed to distinct float32 values in [0, 1)."""
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal((n_img, PER_IMG * n_img))
    rows = np.repeat(np.arange(n_img), PER_IMG)
    raw[rows, np.arange(PER_IMG * n_img)] += SIGNAL
    order = np.argsort(raw, axis=None, kind="stable")
    ranks = np.empty(raw.size, dtype=np.int64)
    ranks[order] = np.arange(raw.size)
    scores = (ranks / raw.size).astype(np.float32).reshape(raw.shape)
    assert np.unique(scores).size == scores.size, "scores must be distinct for an unambiguous reference"
    return scores


def naive_metrics(scores: np.ndarray, img2txt: list[list[int]]) -> dict[str, float]:
    """Per-row sort and search: the obvious way to compute HARMA.md §7, one argsort per image and per caption."""
    n_img, n_txt = scores.shape
    owner = np.empty(n_txt, dtype=np.int64)
    for i, caps in enumerate(img2txt):
        owner[caps] = i
    i2t = np.empty(n_img, dtype=np.int64)
    for i in range(n_img):
        order = np.argsort(-scores[i])
        i2t[i] = min(int(np.where(order == t)[0][0]) for t in img2txt[i])
    t2i = np.empty(n_txt, dtype=np.int64)
    for t in range(n_txt):
        order = np.argsort(-scores[:, t])
        t2i[t] = int(np.where(order == owner[t])[0][0])
    out = {}
    for k in (1, 5, 10):
        out[f"txt_r{k}"] = 100.0 * float(np.mean(i2t < k))
        out[f"img_r{k}"] = 100.0 * float(np.mean(t2i < k))
    out["r_mean"] = sum(out[k] for k in METRIC_KEYS[:6]) / 6
    return {k: out[k] for k in METRIC_KEYS}


def timed(fn, repeats: int) -> tuple[float, object, list[float]]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result, times


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2   # ru_maxrss is KiB on Linux


def current_rss_gib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 1024**3


def big_scores(n_img: int, seed: int = 0) -> torch.Tensor:
    """An n_img x 5 n_img float32 matrix filled in place, row block by row block (no full-size temporaries)."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.empty(n_img, PER_IMG * n_img, dtype=torch.float32)
    for start in range(0, n_img, 512):
        block = scores[start: start + 512]
        block.normal_(generator=gen)
        rows = torch.arange(start, start + len(block))
        for j in range(PER_IMG):
            block[rows - start, PER_IMG * rows + j] += SIGNAL
    return scores


def rsicd_size(repeats: int, naive_repeats: int) -> None:
    """Both methods at RSICD test size; prints their table and asserts identical metrics."""
    scores = distinct_scores(N_IMG)
    img2txt = img2txt_for(N_IMG)
    fast_s, fast, fast_all = timed(lambda: retrieval_metrics(torch.from_numpy(scores), img2txt), repeats)
    naive_s, naive, naive_all = timed(lambda: naive_metrics(scores, img2txt), naive_repeats)
    assert fast == naive, f"metrics differ:\n fast  {fast}\n naive {naive}"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, load average "
          f"{os.getloadavg()[0]:.2f}; seconds are medians "
          f"(retrieval_metrics x{repeats}: {', '.join(f'{t:.3f}' for t in fast_all)}; "
          f"naive x{naive_repeats}: {', '.join(f'{t:.2f}' for t in naive_all)})\n")
    print("| scores | method | seconds | speed-up | mR | R@1 i2t / t2i |")
    print("|---|---|---:|---:|---:|---:|")
    shape = f"{N_IMG:,} x {PER_IMG * N_IMG:,}"
    print(f"| {shape} | naive per-row argsort + search | {naive_s:.3f} | 1.0x | {naive['r_mean']:.4f} | "
          f"{naive['txt_r1']:.2f} / {naive['img_r1']:.2f} |")
    print(f"| {shape} | harma.metrics.retrieval_metrics | {fast_s:.4f} | {naive_s / fast_s:.1f}x | "
          f"{fast['r_mean']:.4f} | {fast['txt_r1']:.2f} / {fast['img_r1']:.2f} |")
    print("\nidentical: all 7 metrics equal exactly (assert fast == naive)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-repeats", type=int, default=3)
    parser.add_argument("--no-big", action="store_true", help="skip the 10x memory run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rsicd_size(args.repeats, args.naive_repeats)
    if args.no_big:
        return

    n_big = 10 * N_IMG
    big = big_scores(n_big)
    matrix_gib = big.numel() * 4 / 1024**3
    rss_before, peak_before = current_rss_gib(), peak_rss_gib()
    start = time.perf_counter()
    result = retrieval_metrics(big, img2txt_for(n_big))
    seconds = time.perf_counter() - start
    peak_after = peak_rss_gib()
    print("\n| scores | float32 matrix | RSS before call | peak RSS before | peak RSS after | peak added by "
          "the call | seconds | mR |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {n_big:,} x {PER_IMG * n_big:,} | {matrix_gib:.2f} GiB | {rss_before:.2f} GiB | "
          f"{peak_before:.2f} GiB | {peak_after:.2f} GiB | {(peak_after - peak_before) * 1024:.0f} MiB | "
          f"{seconds:.1f} | {result['r_mean']:.2f} |")


if __name__ == "__main__":
    main()
