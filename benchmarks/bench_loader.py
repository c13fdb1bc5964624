"""Images/s of the data loader alone on CPU, the float path before (ToTensor and Normalize in the workers) against
the uint8 path after (the workers stop at a uint8 tensor; normalising moves to the device), and the shared-memory
bytes of each batch the workers hand over.

Writes a synthetic set (default 256 images at 256x256) and its decoded-image cache, then, for the train transform
(crop, flip, RandAugment) and the test transform (resize), iterates a DataLoader over the cached images with
`--workers` worker processes and batches of `--batch`, the way the trainer does: one warm-up batch, then
`--batches` batches timed; the two paths alternate `--rounds` times and the best round of each is kept.  It also
times the device half (`PixelNormalizer`) on a CPU uint8 batch, the work that leaves the workers, which the GPU
does in the trainer.  Run: `python benchmarks/bench_loader.py [--images 256] [--size 256] [--crop 224]`.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from torch.utils.data import DataLoader, Dataset

from harma.data import (CachedImages, PixelNormalizer, test_pixels, test_transform, train_pixels, train_transform,
                        write_synthetic_dataset)


class Items(Dataset):
    """Item i: transform(image i mod n), as TrainDataset / EvalImages give their image."""

    def __init__(self, source: CachedImages, transform, length: int) -> None:
        self.source, self.transform, self.length = source, transform, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.source[i % len(self.source)])


def loader_rate(source: CachedImages, transform, args) -> tuple[float, int]:
    """(images/s over `--batches` batches after one warm-up batch, bytes of one batch's shared images tensor)."""
    n = args.batch * (args.batches + 1)
    loader = DataLoader(Items(source, transform, n), batch_size=args.batch, num_workers=args.workers,
                        prefetch_factor=2 if args.workers else None)
    batches = iter(loader)
    first = next(batches)
    start = time.perf_counter()
    for _ in batches:
        pass
    seconds = time.perf_counter() - start
    shared = first.untyped_storage().nbytes() if (first.is_shared() or args.workers == 0) else 0
    return args.batch * args.batches / seconds, shared


def normalise_rate(crop: int, batch: int) -> float:
    """Images/s of PixelNormalizer on a CPU uint8 batch (median of 5)."""
    images = torch.randint(0, 256, (batch, 3, crop, crop), dtype=torch.uint8)
    norm, times = PixelNormalizer(torch.device("cpu")), []
    for _ in range(5):
        start = time.perf_counter()
        norm(images)
        times.append(time.perf_counter() - start)
    return batch / sorted(times)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    paths = {"train": (train_transform, train_pixels), "test": (test_transform, test_pixels)}
    with tempfile.TemporaryDirectory() as tmp:
        syn = write_synthetic_dataset(os.path.join(tmp, "set"), args.images, seed=0, image_size=args.size)
        files = sorted(os.path.join(syn.image_root, f) for f in os.listdir(syn.image_root))
        source = CachedImages(files, os.path.join(tmp, "cache"))
        print(f"{args.images} cached images {args.size}x{args.size} -> {args.crop}, batch {args.batch}, "
              f"{args.workers} loader workers, {args.batches} batches timed, best of {args.rounds} rounds, "
              f"{os.cpu_count()} CPUs; images/s (higher is better)\n")
        print("| transform | float32 path (before) | uint8 path (after) | after / before | shared memory per batch "
              "before → after |")
        print("|---|---:|---:|---:|---|")
        for name, (before, after) in paths.items():
            best = {"before": (0.0, 0), "after": (0.0, 0)}
            for _ in range(args.rounds):
                for key, make in (("before", before), ("after", after)):
                    rate, shared = loader_rate(source, make(args.crop), args)
                    best[key] = (max(best[key][0], rate), shared)
            (b, b_bytes), (a, a_bytes) = best["before"], best["after"]
            print(f"| {name} | {b:,.0f} | {a:,.0f} | {a / b:.2f}x | {b_bytes:,} B → {a_bytes:,} B |")
        rate = normalise_rate(args.crop, args.batch)
        print(f"\ndevice half (PixelNormalizer) on CPU, 1 thread: {rate:,.0f} images/s")


if __name__ == "__main__":
    main()
