"""Images/s reading (and transforming) a synthetic set: decoding from disk every time vs the decoded-image cache.

Writes a synthetic set (default 300 images at 256x256, PNG; JPEG copies for a second row), then times, with
one torch thread (as in one DataLoader worker): the uncached source, the cache's first build, and a second
pass through a freshly opened cache, each read-only, + test transform (224) and + train transform (224).
Run: `python benchmarks/bench_image_cache.py [--images 300] [--size 256] [--crop 224]`.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from PIL import Image

from harma.data import CachedImages, DiskImages, test_transform, train_transform, write_synthetic_dataset


def rate(source, transform, passes: int = 2) -> float:
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for i in range(len(source)):
            img = source[i]
            if transform is not None:
                transform(img)
        best = min(best, time.perf_counter() - start)
    return len(source) / best


def bench(paths: list[str], cache_dir: str, crop: int) -> list[tuple[str, float, float, float]]:
    test_tf, train_tf = test_transform(crop), train_transform(crop)
    disk = DiskImages(paths)
    rows = [("uncached (decode each time)", rate(disk, None), rate(disk, test_tf), rate(disk, train_tf))]
    start = time.perf_counter()
    CachedImages(paths, cache_dir)
    build = len(paths) / (time.perf_counter() - start)
    cached = CachedImages(paths, cache_dir)               # second open: nothing decoded
    rows.append(("cache build (first pass)", build, float("nan"), float("nan")))
    rows.append(("cached (second pass)", rate(cached, None), rate(cached, test_tf), rate(cached, train_tf)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        syn = write_synthetic_dataset(os.path.join(tmp, "set"), args.images, seed=0, image_size=args.size)
        pngs = sorted(os.path.join(syn.image_root, f) for f in os.listdir(syn.image_root))
        jpgs = []
        for p in pngs:
            jpgs.append(p[:-4] + ".jpg")
            Image.open(p).save(jpgs[-1], quality=95)
        print(f"{args.images} images {args.size}x{args.size}, transform size {args.crop}, 1 torch thread, "
              f"{os.cpu_count()} CPUs; images/s (higher is better)\n")
        print(f"| format | source | read only | + test transform | + train transform |")
        print(f"|---|---|---:|---:|---:|")
        for fmt, paths in (("PNG", pngs), ("JPEG q95", jpgs)):
            for name, *rates in bench(paths, os.path.join(tmp, f"cache-{fmt}"), args.crop):
                cells = " | ".join("" if r != r else f"{r:,.0f}" for r in rates)
                print(f"| {fmt} | {name} | {cells} |")


if __name__ == "__main__":
    main()
