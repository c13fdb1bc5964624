"""Read the authors' annotation json files (HARMA.md section 8) into plain lists.

Train files are a flat list with one entry per caption (`caption`, `image`, `image_id`, `label_name`,
`label`); `image_id` groups an image's captions and is mapped here to contiguous ints 0..n_images-1 in order
of first appearance.  Val/test files have one entry per image with `caption` a list of strings; they become a
flat caption list in file order (image i's captions contiguous) plus the `img2txt` / `txt2img` maps that the
retrieval metrics need.  Every caption goes through `clean_caption`.  Any defect (bad json, a missing key, a
wrong type, a caption that cleans to nothing) is one `DataError` naming the file, the entry index and the key.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from harma.errors import DataError

_CAPTION_TABLE = str.maketrans({**{c: None for c in ",.'!?\"()*#:;~"}, "-": " ", "/": " "})


def clean_caption(text: str, max_words: int = 30, where: str | None = None) -> str:
    """Lowercase; drop , . ' ! ? " ( ) * # : ; ~; turn - and / into spaces; collapse whitespace; keep the
    first `max_words` words.  A caption with no words left is a DataError (prefixed by `where` if given)."""
    prefix = f"{where}: " if where else ""
    if not isinstance(text, str):
        raise DataError(f"{prefix}caption: expected a string, got {text!r}")
    words = text.lower().translate(_CAPTION_TABLE).split()
    if not words:
        raise DataError(f"{prefix}caption {text!r} is empty after cleaning")
    return " ".join(words[:max_words])


@dataclass(frozen=True)
class TrainAnnotations:
    """A train split: one row per caption, images indexed by contiguous image id."""
    source: str                   # the json file
    images: list[str]             # image path (relative to image_root) of each contiguous image id
    origins: list[str]            # "<file> entry <k>": the first entry naming each image (for error messages)
    captions: list[str]           # cleaned caption of each entry, file order
    caption_image: list[int]      # contiguous image id of each caption
    labels: list[int]             # scene label of each caption; -1 when the file has no labels
    label_names: dict[int, str]   # label -> label_name where the file gives one

    @property
    def n_classes(self) -> int:
        """max(label) + 1 (0 when the file carries no labels): valid as a size for class-indexed tables."""
        return max(self.labels, default=-1) + 1


@dataclass(frozen=True)
class EvalAnnotations:
    """A val/test split: one row per image; captions flattened in file order."""
    source: str
    images: list[str]             # image path (relative to image_root) of each image
    origins: list[str]            # "<file> entry <k>" of each image
    captions: list[str]           # cleaned captions, image i's captions contiguous
    img2txt: list[list[int]]      # caption indices of each image
    txt2img: list[int]            # image index of each caption


def _read_entries(path: str | os.PathLike) -> list[Any]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: annotation file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid json ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not utf-8 text ({exc})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a json list of entries, got {type(data).__name__}")
    return data


def _get(entry: Any, key: str, kinds: tuple[type, ...], what: str, path: str, idx: int) -> Any:
    if not isinstance(entry, dict):
        raise DataError(f"{path}: entry {idx}: expected an object, got {type(entry).__name__}")
    if key not in entry:
        raise DataError(f"{path}: entry {idx}: missing key {key!r}")
    value = entry[key]
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise DataError(f"{path}: entry {idx}: key {key!r}: expected {what}, got {value!r}")
    return value


def load_train_annotations(path: str | os.PathLike, max_words: int = 30) -> TrainAnnotations:
    """Load a train json (one entry per caption).  `label` must be in every entry or in none."""
    path = os.fspath(path)
    entries = _read_entries(path)
    has_labels = any(isinstance(e, dict) and "label" in e for e in entries)
    images: list[str] = []
    origins: list[str] = []
    id_map: dict[Any, int] = {}
    captions, caption_image, labels = [], [], []
    label_names: dict[int, str] = {}
    for idx, entry in enumerate(entries):
        caption = _get(entry, "caption", (str,), "a string", path, idx)
        image = _get(entry, "image", (str,), "an image path string", path, idx)
        image_id = _get(entry, "image_id", (int, str), "an int or string", path, idx)
        captions.append(clean_caption(caption, max_words, where=f"{path}: entry {idx}: key 'caption'"))
        if image_id not in id_map:
            id_map[image_id] = len(images)
            images.append(image)
            origins.append(f"{path} entry {idx}")
        elif images[id_map[image_id]] != image:
            raise DataError(f"{path}: entry {idx}: key 'image': image_id {image_id!r} names {image!r} here but "
                            f"{images[id_map[image_id]]!r} in {origins[id_map[image_id]]}")
        caption_image.append(id_map[image_id])
        if has_labels:
            label = _get(entry, "label", (int,), "an int >= 0", path, idx)
            if label < 0:
                raise DataError(f"{path}: entry {idx}: key 'label': expected an int >= 0, got {label!r}")
            labels.append(label)
            if isinstance(entry.get("label_name"), str):
                label_names.setdefault(label, entry["label_name"])
        else:
            labels.append(-1)
    return TrainAnnotations(path, images, origins, captions, caption_image, labels, label_names)


def load_eval_annotations(path: str | os.PathLike, max_words: int = 30) -> EvalAnnotations:
    """Load a val/test json (one entry per image, `caption` a non-empty list of strings)."""
    path = os.fspath(path)
    entries = _read_entries(path)
    images, origins, captions, txt2img = [], [], [], []
    img2txt: list[list[int]] = []
    for idx, entry in enumerate(entries):
        image = _get(entry, "image", (str,), "an image path string", path, idx)
        caps = _get(entry, "caption", (list,), "a list of caption strings", path, idx)
        if not caps:
            raise DataError(f"{path}: entry {idx}: key 'caption': expected a non-empty list of strings, got []")
        owned = []
        for j, cap in enumerate(caps):
            where = f"{path}: entry {idx}: key 'caption'[{j}]"
            owned.append(len(captions))
            captions.append(clean_caption(cap, max_words, where=where))
            txt2img.append(len(images))
        img2txt.append(owned)
        images.append(image)
        origins.append(f"{path} entry {idx}")
    return EvalAnnotations(path, images, origins, captions, img2txt, txt2img)
