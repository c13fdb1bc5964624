from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harma.data import DataError, ensure_synthetic_dataset, load_eval_annotations, load_train_annotations
from harma.data import synthetic
from harma.data.synthetic import SCENES, write_synthetic_dataset


def _load(path):
    return json.loads(Path(path).read_text())


def _pixels(root):
    return {name: np.asarray(Image.open(os.path.join(root, name))) for name in sorted(os.listdir(root))}


def test_authors_format(tmp_path):
    paths = write_synthetic_dataset(tmp_path / "s", 20, seed=1)
    train, val, test = _load(paths.train_json), _load(paths.val_json), _load(paths.test_json)
    assert (len(train) // 5, len(val), len(test)) == (14, 3, 3)
    for e in train:
        assert list(e) == ["caption", "image", "image_id", "label_name", "label"]
        assert isinstance(e["caption"], str) and isinstance(e["image_id"], int) and isinstance(e["label"], int)
        assert e["label_name"] == SCENES[e["label"]][0]
        assert os.path.isfile(os.path.join(paths.image_root, e["image"]))
    for e in val + test:
        assert {"image", "caption"} <= set(e)
        assert len(e["caption"]) == 5 and len(set(e["caption"])) == 5
        assert Image.open(os.path.join(paths.image_root, e["image"])).size == (64, 64)
    by_image = {}
    for e in train:
        by_image.setdefault(e["image_id"], []).append(e["caption"])
    assert all(len(c) == 5 and len(set(c)) == 5 for c in by_image.values())
    assert {e["label"] for e in train} == set(range(len(SCENES)))
    # our own loaders accept it
    assert len(load_train_annotations(paths.train_json).images) == 14
    assert load_eval_annotations(paths.test_json).img2txt[2] == [10, 11, 12, 13, 14]


def test_captions_describe_the_scene(tmp_path):
    paths = write_synthetic_dataset(tmp_path / "s", 12, seed=0)
    entries = _load(paths.train_json) + [{"caption": c, "label": e["label"]}
                                         for e in _load(paths.val_json) + _load(paths.test_json)
                                         for c in e["caption"]]
    for e in entries:
        assert SCENES[e["label"]][1] in e["caption"]
        assert any(shape in e["caption"] for shape in synthetic.SHAPES)


def test_scenes_differ_in_colour(tmp_path):
    paths = write_synthetic_dataset(tmp_path / "s", 40, seed=0)
    means = {}
    for e in _load(paths.train_json)[::5]:
        means.setdefault(e["label"], []).append(np.asarray(Image.open(
            os.path.join(paths.image_root, e["image"]))).reshape(-1, 3).mean(0))
    centres = np.array([np.mean(means[k], 0) for k in sorted(means)])
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    assert dist[~np.eye(len(centres), dtype=bool)].min() > 10


def test_deterministic(tmp_path):
    a = write_synthetic_dataset(tmp_path / "a", 12, seed=5)
    b = write_synthetic_dataset(tmp_path / "b", 12, seed=5)
    c = write_synthetic_dataset(tmp_path / "c", 12, seed=6)
    for name in ("train_json", "val_json", "test_json"):
        assert Path(getattr(a, name)).read_bytes() == Path(getattr(b, name)).read_bytes()
    pa, pb = _pixels(a.image_root), _pixels(b.image_root)
    assert pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert Path(a.train_json).read_bytes() != Path(c.train_json).read_bytes()


def test_too_few_images(tmp_path):
    with pytest.raises(DataError, match="n_images must be >= 6"):
        ensure_synthetic_dataset(tmp_path / "s", 5)
    assert not (tmp_path / "s").exists()


def test_ensure_is_idempotent(tmp_path, monkeypatch):
    out = tmp_path / "nested" / "set"
    first = ensure_synthetic_dataset(out, 10, seed=2)
    stamp = os.stat(first.train_json).st_mtime_ns
    monkeypatch.setattr(synthetic, "write_synthetic_dataset", lambda *a, **k: pytest.fail("regenerated"))
    assert ensure_synthetic_dataset(out, 10, seed=2) == first
    assert os.stat(first.train_json).st_mtime_ns == stamp
    assert first.image_root == str(out / "images")
    assert os.listdir(out.parent) == ["set"]                  # no temporary folder left behind
    with pytest.raises(DataError, match="not the requested"):
        ensure_synthetic_dataset(out, 10, seed=3)


def test_ensure_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="holds no complete synthetic data set"):
        ensure_synthetic_dataset(tmp_path / "s", 10)
    (tmp_path / "empty").mkdir()
    assert os.path.isfile(ensure_synthetic_dataset(tmp_path / "empty", 10).val_json)


def test_ensure_lost_race_uses_the_winner(tmp_path, monkeypatch):
    out = tmp_path / "s"
    real_write = synthetic.write_synthetic_dataset
    calls = []

    def write_while_another_finishes(target, *args):
        calls.append(target)
        if len(calls) == 1:                                    # another caller completes during our generation
            ensure_synthetic_dataset(out, 10, seed=4)
        return real_write(target, *args)

    monkeypatch.setattr(synthetic, "write_synthetic_dataset", write_while_another_finishes)
    paths = ensure_synthetic_dataset(out, 10, seed=4)
    assert len(calls) == 2
    assert os.listdir(tmp_path) == ["s"] and os.path.isfile(paths.test_json)


def _ensure_in_child(out, barrier, results):
    barrier.wait()
    results.put(ensure_synthetic_dataset(out, 16, seed=7).train_json)


def test_concurrent_processes_both_succeed(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_ensure_in_child, args=(tmp_path / "s", barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert results.get(timeout=5) == results.get(timeout=5) == str(tmp_path / "s" / "train.json")
    assert os.listdir(tmp_path) == ["s"]
    assert len(_load(tmp_path / "s" / "train.json")) == 5 * synthetic.split_sizes(16)[0]
