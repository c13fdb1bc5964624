"""`build_datasets`: the one call the trainer makes to get its train, val and test data.

It resolves where the data lives (the `data.*` json files and image root, or a synthetic set created on
demand), loads and cleans the annotations, tokenizes every caption once, opens the images through the
decoded-image cache (or straight from disk when `data.cache` is false) and wraps them in picklable torch
Datasets: train items are `(image uint8 [3,S,S], tokens [77], image_id, label)`, one per caption, with the
loader half of the train transform; val/test are `EvalSplit`s whose `images` dataset uses the loader half of the
test transform and whose captions are pre-tokenized with the `img2txt` / `txt2img` maps the retrieval metrics
need.  Images leave the loader as uint8; `harma.data.transforms.PixelNormalizer` makes them CLIP-normalised
float32 on the device, a batch at a time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from harma.config import DataConfig
from harma.data.annotations import EvalAnnotations, load_eval_annotations, load_train_annotations
from harma.errors import DataError
from harma.data.image_cache import CachedImages, DiskImages, open_images
from harma.data.synthetic import SyntheticPaths, synthetic_for
from harma.data.transforms import test_pixels, train_pixels

Tokenize = Callable[[list[str]], torch.Tensor]


class TrainDataset(Dataset):
    """One item per caption: (image uint8 [3,S,S], tokens LongTensor[77], image_id int, label int)."""

    def __init__(self, images: DiskImages | CachedImages, image_ids: Sequence[int], tokens: torch.Tensor,
                 labels: Sequence[int], captions: Sequence[str], transform: Callable) -> None:
        self.images, self.tokens, self.transform = images, tokens, transform
        self.image_ids, self.labels, self.captions = list(image_ids), list(labels), list(captions)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        image_id = self.image_ids[i]
        return self.transform(self.images[image_id]), self.tokens[i], image_id, self.labels[i]


class EvalImages(Dataset):
    """Item i: image i as uint8 [3,S,S] (the loader half of the test transform)."""

    def __init__(self, images: DiskImages | CachedImages, transform: Callable) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.images[i])


@dataclass
class EvalSplit:
    images: EvalImages              # image i -> uint8 [3,S,S]
    tokens: torch.Tensor            # LongTensor[N_txt, 77], caption order
    img2txt: list[list[int]]        # caption indices of each image
    txt2img: list[int]              # image index of each caption
    captions: list[str]             # cleaned captions
    image_paths: list[str] = field(default_factory=list)


@dataclass
class DataSets:
    train: TrainDataset
    val: EvalSplit
    test: EvalSplit
    n_classes: int                  # max train label + 1 (0 when the train json has no labels)
    label_names: dict[int, str] = field(default_factory=dict)


def resolve_paths(data_cfg: DataConfig) -> SyntheticPaths:
    """Absolute (image_root, train, val, test) paths: the synthetic set (created if absent) or `data.*`."""
    if data_cfg.synthetic_images > 0:
        return synthetic_for(data_cfg)
    for name in ("train_json", "val_json", "test_json", "image_root"):
        if not getattr(data_cfg, name):
            raise DataError(f"data.{name}: required when data.synthetic_images = 0 (or set "
                            f"data.synthetic_images > 0 for a synthetic set)")
    return SyntheticPaths(*(os.path.abspath(getattr(data_cfg, n))
                            for n in ("image_root", "train_json", "val_json", "test_json")))


def _tokenize(tokenize: Tokenize, captions: list[str], source: str) -> torch.Tensor:
    tokens = torch.as_tensor(tokenize(captions))
    if tokens.ndim != 2 or tokens.shape[0] != len(captions):
        raise DataError(f"{source}: tokenizer returned shape {tuple(tokens.shape)} for {len(captions)} captions; "
                        f"expected [{len(captions)}, context_length]")
    return tokens.long()


def _eval_split(ann: EvalAnnotations, root: str, cache_dir: str | None, size: int, tokenize: Tokenize) -> EvalSplit:
    paths = [os.path.join(root, p) for p in ann.images]
    images = EvalImages(open_images(paths, cache_dir, ann.origins), test_pixels(size))
    return EvalSplit(images, _tokenize(tokenize, ann.captions, ann.source), ann.img2txt, ann.txt2img,
                     ann.captions, paths)


def build_datasets(data_cfg: DataConfig, tokenize: Tokenize) -> DataSets:
    """Train/val/test data for `data_cfg`; `tokenize` maps list[str] -> LongTensor[N, 77]
    (e.g. `open_clip.get_tokenizer("ViT-B-32")`).  Builds the image cache on first use."""
    paths = resolve_paths(data_cfg)
    root, size, words = paths.image_root, data_cfg.image_size, data_cfg.max_words
    cache_dir = None
    if data_cfg.cache:
        cache_dir = os.path.abspath(data_cfg.cache_dir or os.path.join(root, ".harma-cache"))
    train_ann = load_train_annotations(paths.train_json, words)
    val_ann = load_eval_annotations(paths.val_json, words)
    test_ann = load_eval_annotations(paths.test_json, words)
    train_images = open_images([os.path.join(root, p) for p in train_ann.images], cache_dir, train_ann.origins)
    train = TrainDataset(train_images, train_ann.caption_image,
                         _tokenize(tokenize, train_ann.captions, train_ann.source), train_ann.labels,
                         train_ann.captions, train_pixels(size))
    return DataSets(train=train, val=_eval_split(val_ann, root, cache_dir, size, tokenize),
                    test=_eval_split(test_ann, root, cache_dir, size, tokenize),
                    n_classes=train_ann.n_classes, label_names=dict(train_ann.label_names))
