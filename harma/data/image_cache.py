"""Image sources: decode from disk every time (`DiskImages`), or once into a decoded-image cache
(`CachedImages`).

The cache decodes every file once to uint8 RGB at its native size and stores all pixels back to back in one
raw file (`pixels.u8`) plus an index (`index.npy`: offset, height, width per image), memory-mapped for
reading, so epochs after the first decode nothing.  A cache folder is named by a hash of the image paths and
their sizes and mtimes, so a changed data set gets a new cache.  It is built in a temporary folder and
renamed into place; when two processes build at once one rename wins and the other uses the winner's cache.
The memory map is opened lazily in each process (safe across fork, picklable for DataLoader workers).  Both
sources index like a list and return PIL RGB images; a missing or undecodable file is one `DataError` naming
the file and the annotation entry it came from.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
from PIL import Image

from harma.errors import DataError

CACHE_FORMAT = 1
_CHUNK = 64                      # images decoded per batch while building (bounds memory)


def _origins(paths: Sequence[str], origins: Sequence[str] | None) -> list[str]:
    if origins is None:
        return [f"image {i}" for i in range(len(paths))]
    if len(origins) != len(paths):
        raise ValueError(f"origins: expected {len(paths)} entries, got {len(origins)}")
    return list(origins)


def decode_image(path: str, origin: str = "image") -> np.ndarray:
    """Decode one file to a uint8 array [H, W, 3]; a missing or unreadable file is a DataError."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{origin}: image file {path} not found") from None
    except Exception as exc:  # PIL raises many types for corrupt files
        raise DataError(f"{origin}: image file {path} cannot be decoded ({type(exc).__name__}: {exc})") from None


class DiskImages:
    """The uncached source: `images[i]` opens and decodes file i each time."""

    def __init__(self, paths: Sequence[str], origins: Sequence[str] | None = None) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.origins = _origins(self.paths, origins)
        for path, origin in zip(self.paths, self.origins):
            if not os.path.isfile(path):
                raise DataError(f"{origin}: image file {path} not found")

    def __len__(self) -> int:
        return len(self.paths)

    def array(self, i: int) -> np.ndarray:
        return decode_image(self.paths[i], self.origins[i])

    def __getitem__(self, i: int) -> Image.Image:
        return Image.fromarray(self.array(i))


def cache_key(paths: Sequence[str], origins: Sequence[str] | None = None) -> str:
    """Hash of (absolute path, size, mtime) of every file; a missing file is a DataError."""
    h = hashlib.sha256(f"harma-image-cache-{CACHE_FORMAT}\n".encode())
    for path, origin in zip(paths, _origins(paths, origins)):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise DataError(f"{origin}: image file {path} not found") from None
        h.update(f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _is_complete(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "index.npy"))


def _build(paths: list[str], origins: list[str], folder: str, workers: int) -> None:
    parent = os.path.dirname(folder)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(folder)}.tmp-")
    except OSError as exc:
        raise DataError(f"cannot create the image cache in {parent} ({exc}); set data.cache_dir to a writable "
                        f"folder or data.cache=false") from None
    try:
        index = np.zeros((len(paths), 3), dtype=np.int64)
        offset = 0
        with open(os.path.join(tmp, "pixels.u8"), "wb") as fh, ThreadPoolExecutor(workers) as pool:
            for start in range(0, len(paths), _CHUNK):
                stop = start + _CHUNK
                for i, arr in enumerate(pool.map(decode_image, paths[start:stop], origins[start:stop]), start):
                    index[i] = (offset, arr.shape[0], arr.shape[1])
                    fh.write(np.ascontiguousarray(arr).tobytes())
                    offset += arr.size
        np.save(os.path.join(tmp, "index.npy"), index)
        os.chmod(tmp, 0o755)                 # mkdtemp makes 0700; a shared cache should stay readable
        with open(os.path.join(tmp, "paths.json"), "w") as fh:
            json.dump(paths, fh)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _is_complete(folder):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class CachedImages:
    """The cached source: built (once, atomically) on construction, then read through a memory map."""

    def __init__(self, paths: Sequence[str], cache_dir: str | os.PathLike, origins: Sequence[str] | None = None,
                 workers: int | None = None) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.origins = _origins(self.paths, origins)
        self.folder = os.path.join(os.fspath(cache_dir), f"images-{cache_key(self.paths, self.origins)}")
        if not _is_complete(self.folder):
            _build(self.paths, self.origins, self.folder, workers or min(8, os.cpu_count() or 1))
        self._index = np.load(os.path.join(self.folder, "index.npy"))
        if self._index.shape != (len(self.paths), 3):
            raise DataError(f"image cache {self.folder}: index holds {self._index.shape[0]} images, expected "
                            f"{len(self.paths)}; delete the folder to rebuild it")
        self._pixels: np.memmap | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_pixels"], state["_pid"] = None, -1
        return state

    def _map(self) -> np.memmap:
        if self._pixels is None or self._pid != os.getpid():
            self._pixels = np.memmap(os.path.join(self.folder, "pixels.u8"), dtype=np.uint8, mode="r")
            self._pid = os.getpid()
        return self._pixels

    def array(self, i: int) -> np.ndarray:
        offset, height, width = (int(v) for v in self._index[i])
        return np.asarray(self._map()[offset:offset + height * width * 3]).reshape(height, width, 3)

    def __getitem__(self, i: int) -> Image.Image:
        return Image.fromarray(self.array(i))


def open_images(paths: Sequence[str], cache_dir: str | os.PathLike | None = None,
                origins: Sequence[str] | None = None) -> DiskImages | CachedImages:
    """`CachedImages` under `cache_dir`, or `DiskImages` when `cache_dir` is None."""
    if cache_dir is None:
        return DiskImages(paths, origins)
    return CachedImages(paths, cache_dir, origins)
