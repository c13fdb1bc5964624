from __future__ import annotations

import json
import os
import pickle

import open_clip
import pytest
import torch
from torch.utils.data import DataLoader

from harma.config import DataConfig
from harma.data import (CachedImages, DataError, DataSets, DiskImages, EvalSplit, build_datasets,
                        ensure_synthetic_dataset)


@pytest.fixture(scope="module")
def tokenize():
    return open_clip.get_tokenizer("ViT-B-32")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "set"
    ensure_synthetic_dataset(out, 12, seed=0)
    return out


def _cfg(synth, **kw):
    return DataConfig(image_root=str(synth), synthetic_images=12, synthetic_seed=0, image_size=32, **kw)


def test_build_datasets_shapes_and_types(synth, tokenize):
    ds = build_datasets(_cfg(synth), tokenize)
    assert isinstance(ds, DataSets) and isinstance(ds.val, EvalSplit) and isinstance(ds.test, EvalSplit)
    assert (len(ds.train), len(ds.val.images), len(ds.test.images)) == (40, 2, 2)
    assert ds.n_classes == 8 and ds.label_names[0] == "farmland"
    image, tokens, image_id, label = ds.train[7]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8            # normalised on the device
    assert tokens.shape == (77,) and tokens.dtype == torch.long
    assert (type(image_id), type(label)) == (int, int) and image_id == 1 and label == 1
    train_json = json.load(open(synth / "train.json"))
    assert [ds.train[i][2] for i in range(0, 40, 5)] == list(range(8))
    assert ds.train.captions[0] == train_json[0]["caption"].lower().rstrip(".")
    for split in (ds.val, ds.test):
        assert split.tokens.shape == (10, 77) and split.tokens.dtype == torch.long
        assert split.img2txt == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]] and split.txt2img == [0] * 5 + [1] * 5
        assert len(split.captions) == 10 and all(c == c.lower() and "." not in c for c in split.captions)
        assert torch.equal(split.tokens, tokenize(split.captions))
        assert split.images[1].shape == (3, 32, 32) and split.images[1].dtype == torch.uint8
    assert isinstance(ds.train.images, CachedImages)
    assert os.path.isdir(synth / "images" / ".harma-cache")


def test_eval_images_are_deterministic(synth, tokenize):
    ds = build_datasets(_cfg(synth), tokenize)
    assert torch.equal(ds.test.images[0], ds.test.images[0])


def test_uncached_and_cache_dir(synth, tokenize, tmp_path):
    plain = build_datasets(_cfg(synth, cache=False), tokenize)
    assert isinstance(plain.train.images, DiskImages)
    cached = build_datasets(_cfg(synth, cache_dir=str(tmp_path / "c")), tokenize)
    assert os.listdir(tmp_path / "c")
    assert torch.equal(plain.val.images[1], cached.val.images[1])


def test_picklable_and_loads_in_workers(synth, tokenize):
    ds = build_datasets(_cfg(synth), tokenize)
    ds.train[0]                                               # memory map opened in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone.val.images[0], ds.val.images[0])
    loader = DataLoader(ds.train, batch_size=8, num_workers=2)
    images, tokens, ids, labels = next(iter(loader))
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.uint8 and tokens.shape == (8, 77)
    assert ids.tolist() == [0] * 5 + [1] * 3 and labels.dtype == torch.long


def test_real_paths_required(tokenize, tmp_path):
    with pytest.raises(DataError, match="data.train_json"):
        build_datasets(DataConfig(), tokenize)
    with pytest.raises(DataError, match="data.image_root"):
        build_datasets(DataConfig(train_json="a", val_json="b", test_json="c"), tokenize)


def test_real_paths_and_missing_image(synth, tokenize, tmp_path):
    root = synth / "images"
    cfg = DataConfig(image_root=str(root), train_json=str(synth / "train.json"), val_json=str(synth / "val.json"),
                     test_json=str(synth / "test.json"), image_size=16, cache=False)
    assert len(build_datasets(cfg, tokenize).train) == 40
    val = json.load(open(synth / "val.json"))
    val[1]["image"] = "missing.png"
    (tmp_path / "val.json").write_text(json.dumps(val))
    bad = DataConfig(image_root=str(root), train_json=cfg.train_json, val_json=str(tmp_path / "val.json"),
                     test_json=cfg.test_json, image_size=16)
    with pytest.raises(DataError, match=r"val\.json entry 1: image file .*missing\.png not found"):
        build_datasets(bad, tokenize)


def test_default_synthetic_location(tokenize, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds = build_datasets(DataConfig(synthetic_images=6, synthetic_seed=3, image_size=16), tokenize)
    assert len(ds.train) == 10 and os.path.isfile(tmp_path / ".harma" / "synthetic-6-3" / "train.json")


def test_bad_tokenizer_output(synth):
    with pytest.raises(DataError, match="tokenizer returned shape"):
        build_datasets(_cfg(synth), lambda texts: torch.zeros(len(texts)))
