"""A synthetic remote-sensing-like data set in exactly the authors' annotation format, for tests and smoke runs.

Each image is a scene (one of eight classes with its own background colour and texture, jittered and noisy)
with one or two groups of objects drawn on it (shape, colour, count and position chosen at random), and its
five captions are written from that content ("two red circles in the upper left of a green farmland"), so a
model can learn to match them.  Output: `images/*.png`, `train.json` (one entry per caption with `image_id`,
`label`, `label_name`), `val.json` and `test.json` (one entry per image, five captions), split about
70/15/15, and a marker file written last.  Everything is a function of (n_images, seed, image_size).
`ensure_synthetic_dataset` generates into a temporary folder and renames it into place, so any number of
concurrent callers all end with the same complete set.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from harma.errors import DataError

MARKER = ".harma-synthetic.json"
FORMAT = 1

# label_name, phrase used in captions, base RGB colour, texture
SCENES = [
    ("farmland", "green farmland", (80, 150, 60), "stripes"),
    ("desert", "sandy desert", (210, 180, 120), "dunes"),
    ("ocean", "blue ocean", (30, 80, 160), "waves"),
    ("forest", "dense forest", (35, 95, 45), "blobs"),
    ("residential", "gray residential area", (140, 140, 140), "grid"),
    ("beach", "sandy beach", (220, 200, 150), "shore"),
    ("snowfield", "white snowfield", (232, 238, 245), "plain"),
    ("bareland", "brown bare land", (130, 90, 60), "blobs"),
]
COLOURS = {"red": (220, 30, 30), "yellow": (240, 220, 40), "black": (20, 20, 20), "white": (250, 250, 250),
           "purple": (140, 40, 170), "orange": (245, 130, 20)}
HIDDEN = {"desert": {"yellow", "orange"}, "beach": {"yellow", "white"}, "snowfield": {"white"},
          "forest": {"black"}, "bareland": {"orange"}}   # colours that would not stand out on the scene
SHAPES = ("circle", "square", "triangle")
REGIONS = {"upper left": (0.0, 0.0), "upper right": (0.5, 0.0), "lower left": (0.0, 0.5),
           "lower right": (0.5, 0.5), "center": (0.25, 0.25)}      # top-left corner of a half-size box
COUNTS = {1: "one", 2: "two", 3: "three", 4: "four"}
CAPTIONS_PER_IMAGE = 5                                             # what _captions writes


@dataclass(frozen=True)
class SyntheticPaths:
    image_root: str
    train_json: str
    val_json: str
    test_json: str


def _paths(out_dir: str) -> SyntheticPaths:
    return SyntheticPaths(*(os.path.join(out_dir, n) for n in ("images", "train.json", "val.json", "test.json")))


def _background(texture: str, base: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.broadcast_to(base, (size, size, 3)).astype(np.float32).copy()
    if texture == "stripes":
        img += np.where((yy * 8).astype(int) % 2 == 0, 0.0, 30.0)[..., None]
    elif texture == "dunes":
        img += 15.0 * np.sin(2 * np.pi * (3 * xx + 2 * yy) + rng.uniform(0, 6))[..., None]
    elif texture == "waves":
        img += 25.0 * np.sin(2 * np.pi * (10 * yy + xx) + rng.uniform(0, 6))[..., None]
    elif texture == "blobs":
        coarse = rng.normal(0, 1, (8, 8))
        img += 25.0 * np.kron(coarse, np.ones((size // 8 + 1, size // 8 + 1)))[:size, :size, None]
    elif texture == "grid":
        street = ((xx * 4) % 1 < 0.08) | ((yy * 4) % 1 < 0.08)
        img[street] = (70, 70, 75)
    elif texture == "shore":
        img[xx + yy > 1.0 + 0.1 * np.sin(12 * xx)] = (40, 110, 180)
    return img


def _draw_group(draw: ImageDraw.ImageDraw, shape: str, colour: tuple, count: int, region: str, size: int,
                rng: np.random.Generator) -> None:
    x0, y0 = (f * size for f in REGIONS[region])
    cell, r = size / 4, size * 0.07
    for k in rng.choice(4, size=count, replace=False):
        cx = x0 + cell * (k % 2 + 0.5) + rng.uniform(-1, 1) * max(cell / 2 - r - 1, 0)
        cy = y0 + cell * (k // 2 + 0.5) + rng.uniform(-1, 1) * max(cell / 2 - r - 1, 0)
        if shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        elif shape == "square":
            draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)


def _phrase(group: dict) -> str:
    n = group["count"]
    return f"{COUNTS[n]} {group['colour']} {group['shape']}{'s' if n > 1 else ''}"


def _captions(scene: str, groups: list[dict]) -> list[str]:
    g, extra = groups[0], (groups[1:] or [None])[0]
    more = f" and {_phrase(extra)} in the {extra['region']}" if extra else ""
    be = "is" if g["count"] == 1 else "are"
    return [
        f"{_phrase(g).capitalize()} in the {g['region']} of a {scene}{more}.",
        f"A {scene} with {_phrase(g)} in the {g['region']}.",
        f"There {be} {_phrase(g)} on the {scene}, located in the {g['region']}{more}.",
        f"An aerial image of a {scene}; {COUNTS[g['count']]} {g['shape']}(s) coloured {g['colour']} appear "
        f"at the {g['region']}.",
        f"In the {g['region']} of this {scene} we can see {_phrase(g)}{more}!",
    ]


def _make_image(label: int, size: int, rng: np.random.Generator) -> tuple[Image.Image, list[str]]:
    name, scene, base, texture = SCENES[label]
    base_arr = np.array(base, np.float32) + rng.uniform(-12, 12, 3)
    img = _background(texture, base_arr, size, rng) + rng.normal(0, 6, (size, size, 3))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    colours = [c for c in COLOURS if c not in HIDDEN.get(name, ())]
    two = rng.random() < 0.5
    regions = list(REGIONS)[:4] if two else list(REGIONS)
    picked = rng.choice(len(regions), size=2, replace=False)
    groups = []
    kinds = [(s, c) for s in SHAPES for c in colours]
    for j, k in enumerate(rng.choice(len(kinds), size=2 if two else 1, replace=False)):
        groups.append({"shape": kinds[k][0], "colour": kinds[k][1], "count": int(rng.integers(1, 5)),
                       "region": regions[picked[j]]})
    draw = ImageDraw.Draw(pil)
    for g in groups:
        _draw_group(draw, g["shape"], COLOURS[g["colour"]], g["count"], g["region"], size, rng)
    return pil, _captions(scene, groups)


def split_sizes(n_images: int) -> tuple[int, int, int]:
    """(train, val, test) image counts: about 70/15/15, at least 2 in each split."""
    if n_images < 6:
        raise DataError(f"synthetic data set: n_images must be >= 6 (2 per split), got {n_images}")
    n_val = max(2, round(0.15 * n_images))
    return n_images - 2 * n_val, n_val, n_val


def train_captions(n_images: int) -> int:
    """Entries of the train split (one per caption) of a set of `n_images` images, without generating it."""
    return split_sizes(n_images)[0] * CAPTIONS_PER_IMAGE


def write_synthetic_dataset(out_dir: str | os.PathLike, n_images: int, seed: int = 0,
                            image_size: int = 64) -> SyntheticPaths:
    """Write the set into `out_dir` (created if needed; not atomic: see `ensure_synthetic_dataset`)."""
    out = os.path.abspath(os.fspath(out_dir))
    paths = _paths(out)
    os.makedirs(paths.image_root, exist_ok=True)
    sizes = split_sizes(n_images)
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    image_id = 0
    for split, count in zip(splits, sizes):
        for j in range(count):
            label = j % len(SCENES)
            name = SCENES[label][0]
            pil, caps = _make_image(label, image_size, np.random.default_rng([seed, image_id]))
            fname = f"{name}_{image_id:05d}.png"
            pil.save(os.path.join(paths.image_root, fname), format="PNG")
            if split == "train":
                splits[split] += [{"caption": c, "image": fname, "image_id": image_id, "label_name": name,
                                   "label": label} for c in caps]
            else:
                splits[split].append({"image": fname, "caption": caps, "image_id": image_id,
                                      "label_name": name, "label": label})
            image_id += 1
    for split, path in zip(splits, (paths.train_json, paths.val_json, paths.test_json)):
        with open(path, "w") as fh:
            json.dump(splits[split], fh)
    with open(os.path.join(out, MARKER), "w") as fh:
        json.dump(_marker(n_images, seed, image_size), fh)
    return paths


def _marker(n_images: int, seed: int, image_size: int) -> dict:
    return {"format": FORMAT, "n_images": n_images, "seed": seed, "image_size": image_size}


def _read_marker(out: str) -> dict | None:
    try:
        with open(os.path.join(out, MARKER)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def ensure_synthetic_dataset(out_dir: str | os.PathLike, n_images: int, seed: int = 0,
                             image_size: int = 64) -> SyntheticPaths:
    """Return the set at `out_dir`, generating it first if absent (temporary folder, then atomic rename).
    Safe to call from many processes at once; a folder holding a different set is a DataError."""
    out = os.path.abspath(os.fspath(out_dir))
    want = _marker(n_images, seed, image_size)
    if _read_marker(out) is None:
        if os.path.isdir(out) and os.listdir(out):
            raise DataError(f"{out}: exists, is not empty and holds no complete synthetic data set (no {MARKER}); "
                            f"remove it or choose another folder")
        split_sizes(n_images)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=os.path.dirname(out), prefix=f".{os.path.basename(out)}.tmp-")
        try:
            write_synthetic_dataset(tmp, n_images, seed, image_size)
            os.chmod(tmp, 0o755)             # mkdtemp makes 0700; a shared data set should stay readable
            try:
                os.rename(tmp, out)
            except OSError:
                if _read_marker(out) is None:   # not a lost race: a real failure
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    have = _read_marker(out)
    if have != want:
        raise DataError(f"{out}: holds a synthetic data set {have}, not the requested {want}; "
                        f"choose another folder")
    return _paths(out)


def synthetic_for(data) -> SyntheticPaths:
    """The synthetic set a DataConfig asks for (`data.synthetic_images` > 0), created if absent: under
    `data.image_root`, else `.harma/synthetic-<n>-<seed>`.  The one owner of that default, for the trainer and
    `harma data check`."""
    n, seed = data.synthetic_images, data.synthetic_seed
    return ensure_synthetic_dataset(data.image_root or f".harma/synthetic-{n}-{seed}", n, seed)
