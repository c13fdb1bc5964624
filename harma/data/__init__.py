"""Data for HarMA: the authors' annotation formats, transforms, a decoded-image cache, a synthetic data set.

The trainer needs one call, `build_datasets(data_cfg, tokenize)`, which returns a `DataSets` with a train
Dataset (one item per caption) and val/test `EvalSplit`s.  The pieces it is built from (caption cleaning and
annotation loading, the transforms, the image sources and the synthetic data set generator) are exported
for tests, benchmarks and the `harma data` CLI.
"""
import importlib

from harma.errors import DataError

# Names are imported on first use (PEP 562), so that the `harma data` CLI loads without torch;
# `from harma.data import build_datasets` works as before.
_EXPORTS = {
    "annotations": ["EvalAnnotations", "TrainAnnotations", "clean_caption", "load_eval_annotations",
                    "load_train_annotations"],
    "datasets": ["DataSets", "EvalImages", "EvalSplit", "TrainDataset", "build_datasets", "resolve_paths"],
    "image_cache": ["CachedImages", "DiskImages", "decode_image", "open_images"],
    "synthetic": ["SyntheticPaths", "ensure_synthetic_dataset", "write_synthetic_dataset"],
    "transforms": ["CLIP_MEAN", "CLIP_STD", "PixelNormalizer", "test_pixels", "test_transform", "train_pixels",
                   "train_transform"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "build_datasets", "DataSets", "EvalSplit", "TrainDataset", "EvalImages", "resolve_paths", "DataError",
    "clean_caption", "load_train_annotations", "load_eval_annotations", "TrainAnnotations", "EvalAnnotations",
    "train_transform", "test_transform", "train_pixels", "test_pixels", "PixelNormalizer", "CLIP_MEAN", "CLIP_STD",
    "DiskImages", "CachedImages", "open_images", "decode_image",
    "SyntheticPaths", "write_synthetic_dataset", "ensure_synthetic_dataset",
]


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))
