"""Data for HarMA: the authors' annotation formats, transforms, a decoded-image cache, a synthetic data set.

The trainer needs one call, `build_datasets(data_cfg, tokenize)`, which returns a `DataSets` with a train
Dataset (one item per caption) and val/test `EvalSplit`s.  The pieces it is built from (caption cleaning and
annotation loading, the transforms, the image sources and the synthetic data set generator) are exported
for tests, benchmarks and the `harma data` CLI.
"""
from harma.data.annotations import (EvalAnnotations, TrainAnnotations, clean_caption, load_eval_annotations,
                                    load_train_annotations)
from harma.data.datasets import DataSets, EvalImages, EvalSplit, TrainDataset, build_datasets, resolve_paths
from harma.data.errors import DataError
from harma.data.image_cache import CachedImages, DiskImages, decode_image, open_images
from harma.data.synthetic import SyntheticPaths, ensure_synthetic_dataset, write_synthetic_dataset
from harma.data.transforms import CLIP_MEAN, CLIP_STD, test_transform, train_transform

__all__ = [
    "build_datasets", "DataSets", "EvalSplit", "TrainDataset", "EvalImages", "resolve_paths", "DataError",
    "clean_caption", "load_train_annotations", "load_eval_annotations", "TrainAnnotations", "EvalAnnotations",
    "train_transform", "test_transform", "CLIP_MEAN", "CLIP_STD",
    "DiskImages", "CachedImages", "open_images", "decode_image",
    "SyntheticPaths", "write_synthetic_dataset", "ensure_synthetic_dataset",
]
