"""Time `harma.metrics.retrieval_metrics` against an itm_eval-style per-row argsort reference; its memory at 10x.

At RSICD test size (1,093 images x 5,465 captions, 5 contiguous captions per image) the scores are random with
some signal (own pairs get +1.5 on N(0, 1) noise), then rank-transformed to distinct values so the reference's
argsort has no ties and its answer is unambiguous.  The reference, written here in the style of the authors'
`itm_eval`, takes the i2t and t2i score matrices (the t2i one is the contiguous transpose, made before timing,
as itm_eval receives it), runs `np.argsort(row)[::-1]` on every row of each and takes the position of the best
own caption (i2t) or of the own image (t2i).  Beside them, the floor for exact counts on tie-free scores:
two whole-matrix numpy count passes (`numpy_floor`), which handle no ties.  Timing is interleaved: each round
runs the reference once, then retrieval_metrics and the floor `--inner` times each; the figures are medians over
all rounds, on 1 thread.  All 7 metrics must
agree under each tie policy, with a tie gap of 0.  Then a fresh subprocess fills a 10x matrix (10,930 x 54,650
float32, 2.23 GiB) in place and measures what one call adds: tracemalloc's peak (numpy reports its buffers to
it) and the rise of the process's peak RSS (ru_maxrss) over the call.
Run: `python benchmarks/bench_metrics.py [--rounds 7] [--inner 5] [--no-big] [--threads 1]`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import torch

from harma.metrics import METRIC_KEYS, TIE_GAP_KEY, TIE_POLICIES, retrieval_metrics

N_IMG, PER_IMG = 1093, 5
SIGNAL = 1.5
MIB = 1024**2


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


def argsort_reference(scores_i2t: np.ndarray, scores_t2i: np.ndarray, img2txt: list[list[int]],
                      txt2img: np.ndarray) -> dict[str, float]:
    """itm_eval-style: descending argsort of every row, rank = position of the first own item in it."""
    i2t = np.empty(len(scores_i2t))
    for i, row in enumerate(scores_i2t):
        order = np.argsort(row)[::-1]
        i2t[i] = min(np.where(order == t)[0][0] for t in img2txt[i])
    t2i = np.empty(len(scores_t2i))
    for t, row in enumerate(scores_t2i):
        order = np.argsort(row)[::-1]
        t2i[t] = np.where(order == txt2img[t])[0][0]
    return recalls(i2t, t2i)


def recalls(i2t: np.ndarray, t2i: np.ndarray) -> dict[str, float]:
    """R@1/5/10 both ways and their mean from 0-based ranks of the first correct match, as itm_eval reports them."""
    out = {}
    for k in (1, 5, 10):
        out[f"txt_r{k}"] = 100.0 * float(np.mean(i2t < k))
        out[f"img_r{k}"] = 100.0 * float(np.mean(t2i < k))
    out["r_mean"] = sum(out[k] for k in METRIC_KEYS[:6]) / 6
    return {k: out[k] for k in METRIC_KEYS}


def numpy_floor(scores: np.ndarray, img2txt: list[list[int]]) -> dict[str, float]:
    """The floor for exact counts on tie-free scores: two whole-matrix numpy passes, one per direction (count the
    captions above each image's best own caption; count the images above each caption's own image)."""
    n_img, n_txt = scores.shape
    own = np.asarray(img2txt)
    best_own = scores[np.arange(n_img)[:, None], own].max(axis=1)
    i2t = np.count_nonzero(scores > best_own[:, None], axis=1)
    txt2img = np.empty(n_txt, dtype=np.int64)
    txt2img[own.ravel()] = np.repeat(np.arange(n_img), own.shape[1])
    t2i = np.count_nonzero(scores > scores[txt2img, np.arange(n_txt)][None, :], axis=0)
    return recalls(i2t, t2i)


def seconds(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def rsicd_size(rounds: int, inner: int) -> None:
    """Interleaved timing at RSICD test size; prints the table and asserts equal metrics under every policy."""
    scores = distinct_scores(N_IMG)
    scores_t2i = np.ascontiguousarray(scores.T)
    img2txt = img2txt_for(N_IMG)
    txt2img = np.repeat(np.arange(N_IMG), PER_IMG)
    ref_times, fast_times, floor_times = [], [], []
    ref = fast = floor = None
    for _ in range(rounds):
        t, ref = seconds(lambda: argsort_reference(scores, scores_t2i, img2txt, txt2img))
        ref_times.append(t)
        for _ in range(inner):
            t, fast = seconds(lambda: retrieval_metrics(scores, img2txt))
            fast_times.append(t)
            t, floor = seconds(lambda: numpy_floor(scores, img2txt))
            floor_times.append(t)
    assert floor == ref, f"numpy floor {floor} vs reference {ref}"
    exact = True
    for ties in TIE_POLICIES:
        got = retrieval_metrics(scores, img2txt, ties=ties)
        assert got[TIE_GAP_KEY] == 0.0, f"tie-free scores gave a tie gap under {ties}: {got}"
        for k in METRIC_KEYS:
            assert abs(got[k] - ref[k]) < 1e-9, f"{ties} {k}: {got[k]} vs reference {ref[k]}"
            exact &= got[k] == ref[k]
    ref_s, fast_s, floor_s = (statistics.median(ref_times), statistics.median(fast_times),
                              statistics.median(floor_times))
    print(f"numpy {np.__version__}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
          f"load average {os.getloadavg()[0]:.2f}; {rounds} rounds of (reference x1, retrieval_metrics x{inner})")
    print(f"reference runs: {', '.join(f'{t:.3f}' for t in ref_times)} s")
    print(f"retrieval_metrics runs: min {min(fast_times) * 1e3:.2f}, max {max(fast_times) * 1e3:.2f} ms\n")
    print("| scores | method | median seconds | speed-up | mR | R@1 i2t / t2i |")
    print("|---|---|---:|---:|---:|---:|")
    shape = f"{N_IMG:,} x {PER_IMG * N_IMG:,}"
    print(f"| {shape} | itm_eval-style per-row argsort | {ref_s:.3f} | 1.0x | {ref['r_mean']:.4f} | "
          f"{ref['txt_r1']:.2f} / {ref['img_r1']:.2f} |")
    print(f"| {shape} | harma.metrics.retrieval_metrics | {fast_s:.4f} | {ref_s / fast_s:.0f}x | "
          f"{fast['r_mean']:.4f} | {fast['txt_r1']:.2f} / {fast['img_r1']:.2f} |")
    print(f"| {shape} | numpy floor: two count passes, no ties handled | {floor_s:.4f} | {ref_s / floor_s:.0f}x | "
          f"{floor['r_mean']:.4f} | {floor['txt_r1']:.2f} / {floor['img_r1']:.2f} |")
    print(f"\nretrieval_metrics / numpy floor: {fast_s / floor_s:.2f}x the floor's time")
    print(f"\nall 7 metrics agree under {', '.join(TIE_POLICIES)} ({'bit for bit' if exact else 'within 1e-9'}), "
          f"tie gap 0")


def big_scores(n_img: int, seed: int = 0) -> np.ndarray:
    """An n_img x 5 n_img float32 matrix filled in place, row block by row block (no full-size temporaries)."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.empty(n_img, PER_IMG * n_img, dtype=torch.float32)
    for start in range(0, n_img, 512):
        block = scores[start: start + 512]
        block.normal_(generator=gen)
        rows = torch.arange(start, start + len(block))
        for j in range(PER_IMG):
            block[rows - start, PER_IMG * rows + j] += SIGNAL
    return scores.numpy()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # ru_maxrss is KiB on Linux


def big_child() -> None:
    """In a fresh process: one timed call watched by ru_maxrss, one watched by tracemalloc; prints JSON."""
    n_big = 10 * N_IMG
    scores, img2txt = big_scores(n_big), img2txt_for(n_big)
    rss_before = peak_rss_mib()
    t, result = seconds(lambda: retrieval_metrics(scores, img2txt))
    rss_after = peak_rss_mib()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    retrieval_metrics(scores, img2txt)
    traced_peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    print(json.dumps({"shape": list(scores.shape), "matrix_mib": scores.nbytes / MIB, "seconds": t,
                      "peak_rss_before_mib": rss_before, "peak_rss_after_mib": rss_after,
                      "traced_peak_mib": traced_peak / MIB, "r_mean": result["r_mean"]}))


def ten_times(threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, __file__, "--big-child", "--threads", str(threads)],
                          capture_output=True, text=True, env=env, check=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print("\n| scores | float32 matrix | seconds | peak RSS before / after the call | added by the call (RSS) | "
          "tracemalloc peak of the call | mR |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| {r['shape'][0]:,} x {r['shape'][1]:,} | {r['matrix_mib'] / 1024:.2f} GiB | {r['seconds']:.2f} | "
          f"{r['peak_rss_before_mib']:,.0f} / {r['peak_rss_after_mib']:,.0f} MiB | "
          f"{r['peak_rss_after_mib'] - r['peak_rss_before_mib']:.0f} MiB | {r['traced_peak_mib']:.1f} MiB | "
          f"{r['r_mean']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--inner", type=int, default=5, help="retrieval_metrics calls per round")
    parser.add_argument("--no-big", action="store_true", help="skip the 10x memory run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.big_child:
        big_child()
        return
    rsicd_size(args.rounds, args.inner)
    if not args.no_big:
        ten_times(args.threads)


if __name__ == "__main__":
    main()
