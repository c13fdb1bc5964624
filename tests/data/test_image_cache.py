from __future__ import annotations

import multiprocessing
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from harma.data import CachedImages, DataError, DiskImages, decode_image, open_images
from harma.data import image_cache


@pytest.fixture
def count_opens(monkeypatch):
    calls = []
    real_open = Image.open

    def counting_open(*args, **kwargs):
        calls.append(args[0])
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    return calls


def _reference(paths):
    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(np.array(im.convert("RGB")))
    return out


def test_disk_and_cache_give_identical_pixels(image_files, tmp_path):
    ref = _reference(image_files)
    disk = DiskImages(image_files)
    cache = CachedImages(image_files, tmp_path / "cache")
    assert len(disk) == len(cache) == len(image_files)
    for i, expected in enumerate(ref):
        for source in (disk, cache):
            assert source.array(i).dtype == np.uint8
            assert np.array_equal(source.array(i), expected)
            img = source[i]
            assert img.mode == "RGB" and img.size == (expected.shape[1], expected.shape[0])
            assert np.array_equal(np.asarray(img), expected)
    assert np.array_equal(cache[-1], ref[-1])


def test_second_open_does_not_decode(image_files, tmp_path, count_opens):
    CachedImages(image_files, tmp_path / "cache")
    assert len(count_opens) == len(image_files)          # built: every file decoded once
    count_opens.clear()
    again = CachedImages(image_files, tmp_path / "cache")
    for _ in range(2):                                     # two "epochs"
        for i in range(len(again)):
            again[i]
    assert count_opens == []
    disk = DiskImages(image_files)
    disk[0], disk[0]
    assert len(count_opens) == 2                           # the uncached source decodes every time


def test_changed_file_rebuilds(image_files, tmp_path):
    first = CachedImages(image_files, tmp_path / "cache")
    Image.new("RGB", (3, 4), (1, 2, 3)).save(image_files[0])
    st = os.stat(image_files[0])
    os.utime(image_files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = CachedImages(image_files, tmp_path / "cache")
    assert second.folder != first.folder
    assert second.array(0).shape == (4, 3, 3) and (second.array(0) == (1, 2, 3)).all()
    assert np.array_equal(second.array(1), first.array(1))


def test_pickle_drops_the_memory_map(image_files, tmp_path):
    cache = CachedImages(image_files, tmp_path / "cache")
    cache[0]
    assert cache._pixels is not None
    clone = pickle.loads(pickle.dumps(cache))
    assert clone._pixels is None
    assert np.array_equal(clone.array(2), cache.array(2))


@pytest.mark.parametrize("cached", [False, True])
def test_missing_file_is_named(image_files, tmp_path, cached):
    paths = image_files + [str(tmp_path / "gone.png")]
    origins = [f"train.json entry {i}" for i in range(len(paths))]
    with pytest.raises(DataError, match=r"train\.json entry 5: image file .*gone\.png not found"):
        open_images(paths, tmp_path / "cache" if cached else None, origins)


def test_unreadable_image_is_named(image_files, tmp_path):
    bad = tmp_path / "garbage.png"
    bad.write_bytes(b"\x89PNG not really an image" * 10)
    paths = image_files + [str(bad)]
    origins = [f"val.json entry {i}" for i in range(len(paths))]
    with pytest.raises(DataError, match=r"val\.json entry 5: image file .*garbage\.png cannot be decoded"):
        CachedImages(paths, tmp_path / "cache", origins)
    assert not os.listdir(tmp_path / "cache")               # the failed build left nothing behind
    disk = DiskImages(paths, origins)                         # uncached: found when the image is read
    with pytest.raises(DataError, match=r"val\.json entry 5: image file .*garbage\.png cannot be decoded"):
        disk[5]
    with pytest.raises(DataError, match="garbage.png"):
        decode_image(str(bad))


def test_lost_race_uses_the_winner(image_files, tmp_path, monkeypatch):
    winner = CachedImages(image_files, tmp_path / "cache")
    real, checks = image_cache._is_complete, []

    def first_check_misses(folder):                           # as if the winner renamed just after the check
        checks.append(folder)
        return len(checks) > 1 and real(folder)

    monkeypatch.setattr(image_cache, "_is_complete", first_check_misses)
    loser = CachedImages(image_files, tmp_path / "cache")
    assert len(checks) == 2                                   # it built, lost the rename, then checked again
    assert loser.folder == winner.folder
    assert os.listdir(tmp_path / "cache") == [os.path.basename(winner.folder)]   # temp folder removed
    assert all(np.array_equal(loser.array(i), winner.array(i)) for i in range(len(image_files)))


def _build_in_child(paths, cache_dir, barrier, results):
    barrier.wait()
    cache = CachedImages(paths, cache_dir)
    results.put([int(cache.array(i).sum()) for i in range(len(cache))])


def test_two_processes_build_at_once(image_files, tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=(image_files, tmp_path / "cache", barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    expected = [int(a.sum()) for a in _reference(image_files)]
    assert results.get(timeout=5) == expected and results.get(timeout=5) == expected
    assert len(os.listdir(tmp_path / "cache")) == 1


def test_memory_map_reopened_after_fork(image_files, tmp_path):
    cache = CachedImages(image_files, tmp_path / "cache")
    cache[0]
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    p = ctx.Process(target=lambda: results.put((cache._pid == os.getpid(), int(cache.array(1).sum()),
                                                cache._pid == os.getpid())))
    p.start()
    p.join(30)
    assert results.get(timeout=5) == (False, int(cache.array(1).sum()), True)
