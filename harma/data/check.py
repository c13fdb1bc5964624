"""Checking a configured data set before anything trains on it (`harma data check`, and the quick part before
`harma train` and `harma study run|resume`).

`check_data(data_cfg, decode)` loads the three annotation files with harma's own loaders and reports, per
split, images, captions, captions per image and repeated captions (within one image, across images), and as
problems: an annotation file that does not load, every referenced image file that is missing, an image used
by more than one split, and (with `decode`) every image that cannot be decoded and resized to
`data.image_size`.  `check_data_inputs` runs the quick part (no decoding) and raises one `DataError` naming the
first problems; it skips synthetic sets (generated on first use) and is switched off by
HARMA_SKIP_DATA_CHECK=1 (a cluster whose data exist only on the workers).  No torch here.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from harma.config import DataConfig
from harma.data.annotations import load_eval_annotations, load_train_annotations
from harma.errors import DataError
from harma.terms import DATA_SPLITS

SPLITS = DATA_SPLITS
SHOWN_IN_ERROR = 3
SKIP_ENV = "HARMA_SKIP_DATA_CHECK"


@dataclass(frozen=True)
class SplitReport:
    split: str
    source: str                          # the annotation file
    images: int
    captions: int
    per_image: dict[int, int]            # captions per image -> number of images
    repeated_in_image: int               # captions equal to another caption of the same image
    repeated_across: int                 # captions equal to a caption of another image
    missing: int
    undecodable: int = 0


@dataclass(frozen=True)
class DataReport:
    image_root: str
    image_size: int
    decoded: bool
    splits: list[SplitReport]
    shared: int                          # images referenced by more than one split
    problems: list[str] = field(default_factory=list)


@dataclass
class _Split:
    name: str
    source: str
    images: list[str]                    # relative paths, one per image
    origins: list[str]
    caption_image: list[int]             # image index of each caption
    captions: list[str]


def data_paths(data: DataConfig) -> tuple[str | None, dict[str, str | None]]:
    """(image root, split -> annotation file) as the trainer resolves them (a synthetic set is created)."""
    if data.synthetic_images > 0:
        from harma.data.synthetic import synthetic_for

        p = synthetic_for(data)
        return p.image_root, {"train": p.train_json, "val": p.val_json, "test": p.test_json}
    return data.image_root, {s: getattr(data, f"{s}_json") for s in SPLITS}


def _load(split: str, path: str, max_words: int) -> _Split:
    if split == "train":
        ann = load_train_annotations(path, max_words)
        return _Split(split, path, ann.images, ann.origins, ann.caption_image, ann.captions)
    ev = load_eval_annotations(path, max_words)
    return _Split(split, path, ev.images, ev.origins, ev.txt2img, ev.captions)


def _repeats(s: _Split) -> tuple[int, int]:
    """(captions equal to another of the same image, captions equal to one of another image), counted once."""
    within = across = 0
    owners: dict[str, set[int]] = {}
    seen: set[tuple[str, int]] = set()
    for caption, image in zip(s.captions, s.caption_image):
        if (caption, image) in seen:
            within += 1
        elif owners.get(caption):
            across += 1
        seen.add((caption, image))
        owners.setdefault(caption, set()).add(image)
    return within, across


def _report(s: _Split, missing: int, undecodable: int) -> SplitReport:
    per_image = Counter(Counter(s.caption_image).get(i, 0) for i in range(len(s.images)))
    within, across = _repeats(s)
    return SplitReport(s.name, s.source, len(s.images), len(s.captions), dict(sorted(per_image.items())), within,
                       across, missing, undecodable)


def _load_splits(root: str | None, files: dict[str, str | None], max_words: int,
                 problems: list[str]) -> list[_Split]:
    splits = []
    if not root:
        problems.append("data.image_root: not set")
    for split, path in files.items():
        if not path:
            problems.append(f"data.{split}_json: not set")
            continue
        try:
            splits.append(_load(split, path, max_words))
        except DataError as exc:
            problems.append(str(exc))
    return splits


def _missing(s: _Split, root: str, problems: list[str]) -> set[int]:
    gone = {i for i, rel in enumerate(s.images) if not os.path.isfile(os.path.join(root, rel))}
    problems += [f"{s.origins[i]}: image file {os.path.join(root, s.images[i])} not found" for i in sorted(gone)]
    return gone


def _shared(splits: list[_Split], problems: list[str]) -> int:
    first: dict[str, tuple[str, str]] = {}
    shared = set()
    for s in splits:
        for rel, origin in zip(s.images, s.origins):
            key = os.path.normpath(rel)
            if key in first and first[key][0] != s.name:
                if key not in shared:
                    problems.append(f"image {rel} is in more than one split: {first[key][0]} ({first[key][1]}) "
                                    f"and {s.name} ({origin})")
                shared.add(key)
            first.setdefault(key, (s.name, origin))
    return len(shared)


def decode_problem(path: str, size: int) -> str | None:
    """None when `path` decodes to RGB and resizes to size x size (as the transforms do), else why not."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    except Exception as exc:  # PIL raises many types for corrupt or unsupported files
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def _decode_all(s: _Split, root: str, size: int, skip: set[int], problems: list[str], progress: bool) -> int:
    from tqdm import tqdm

    todo = [i for i in range(len(s.images)) if i not in skip]
    paths = [os.path.join(root, s.images[i]) for i in todo]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(tqdm(pool.map(decode_problem, paths, [size] * len(paths)), total=len(paths), unit="img",
                            desc=f"decoding {s.name}", disable=None if progress else True))
    bad = [(i, p, why) for i, p, why in zip(todo, paths, results) if why]
    problems += [f"{s.origins[i]}: image file {p} cannot be decoded at {size}x{size} ({why})" for i, p, why in bad]
    return len(bad)


def check_data(data: DataConfig, decode: bool = True, progress: bool = False) -> DataReport:
    """The report of the data set `data` names (module docstring); problems are listed, never raised."""
    problems: list[str] = []
    root, files = data_paths(data)
    splits = _load_splits(root, files, data.max_words, problems)
    reports = []
    for s in splits:
        gone = _missing(s, root, problems) if root else set(range(len(s.images)))
        bad = _decode_all(s, root, data.image_size, gone, problems, progress) if decode and root else 0
        reports.append(_report(s, len(gone), bad))
    shared = _shared(splits, problems)
    return DataReport(str(root), data.image_size, decode, reports, shared, problems)


def check_data_inputs(data: DataConfig) -> None:
    """The quick check (no decoding) before training or a study; one DataError naming the first problems."""
    if data.synthetic_images > 0 or os.environ.get(SKIP_ENV, "").strip() in ("1", "true", "yes"):
        return
    report = check_data(data, decode=False)
    if report.problems:
        n = len(report.problems)
        named = "; ".join(report.problems[:SHOWN_IN_ERROR]) + ("; ..." if n > SHOWN_IN_ERROR else "")
        raise DataError(f"data: {n} problem(s) with the configured data set: {named} (`harma data check` with the "
                        f"same --config and --set lists them all; {SKIP_ENV}=1 skips this check)")
