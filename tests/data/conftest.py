"""Shared helpers for the harma.data tests: json writing and small images of assorted sizes and modes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def write_json():
    """write_json(path, data) -> path."""
    return _write_json


@pytest.fixture
def image_files(tmp_path: Path) -> list[str]:
    """Five images of different sizes and PIL modes (RGB png, L png, RGBA png, P png, RGB jpeg)."""
    rng = np.random.default_rng(0)
    out = []
    specs = [("a.png", "RGB", (20, 13)), ("b.png", "L", (9, 17)), ("c.png", "RGBA", (16, 16)),
             ("d.png", "P", (7, 5)), ("e.jpg", "RGB", (24, 10))]
    for name, mode, (w, h) in specs:
        channels = {"RGB": 3, "RGBA": 4}.get(mode, 0)
        shape = (h, w, channels) if channels else (h, w)
        im = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), "L" if mode == "P" else mode)
        if mode == "P":
            im = im.convert("P")
        path = tmp_path / name
        im.save(path)
        out.append(str(path))
    return out
