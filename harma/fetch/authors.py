"""The HarMA authors' annotation files (`<set>_train.json`, `<set>_val.json`, `<set>_test.json`, shipped in
their repository under `data/finetune/`): read, validated with harma's own loaders, and listed.

Each file is kept byte for byte (the trainer reads it as the authors wrote it); what harma needs from it is the
images it names, which select the images a fetch writes, and its counts.  Errors name the file as the user
knows it (a path, or `ARCHIVE:member` for a file read from inside an archive).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harma.terms import DATA_SPLITS
from harma.data.annotations import load_eval_annotations, load_train_annotations
from harma.errors import DataError, FetchError
from harma.fetch.install import safe_relative, sha256_bytes

SPLITS = DATA_SPLITS


@dataclass(frozen=True)
class AuthorsSplit:
    split: str
    label: str              # the file as the user knows it
    data: bytes             # the file's bytes, written unchanged
    images: list[str]       # relative image paths, one per image, file order
    captions: int

    @property
    def sha256(self) -> str:
        return sha256_bytes(self.data)


def file_names(set_name: str) -> dict[str, str]:
    return {split: f"{set_name}_{split}.json" for split in SPLITS}


def _load(split: str, path: str, label: str, data: bytes) -> AuthorsSplit:
    loader = load_train_annotations if split == "train" else load_eval_annotations
    try:
        ann = loader(path)
    except DataError as exc:
        raise DataError(str(exc).replace(path, label)) from None
    images = [safe_relative(image, f"{label} ({origin})") for image, origin in zip(ann.images, ann.origins)]
    return AuthorsSplit(split, label, data, images, len(ann.captions))


def load_split_bytes(split: str, data: bytes, label: str) -> AuthorsSplit:
    """Validate annotation bytes read from somewhere that is not a plain file (an archive member)."""
    with tempfile.TemporaryDirectory(prefix="harma-annotations-") as folder:
        path = os.path.join(folder, f"{split}.json")
        Path(path).write_bytes(data)
        return _load(split, path, label, data)


def load_folder(set_name: str, folder: str | os.PathLike) -> dict[str, AuthorsSplit]:
    """The three annotation files of `set_name` in `folder`; FetchError naming the ones that are missing."""
    folder = Path(folder)
    names = file_names(set_name)
    missing = [name for name in names.values() if not (folder / name).is_file()]
    if missing:
        raise FetchError(f"--authors-json {folder}: expected {', '.join(names.values())} there (the HarMA "
                         f"repository's data/finetune/ holds them); missing {', '.join(missing)}")
    out = {}
    for split, name in names.items():
        path = folder / name
        out[split] = _load(split, str(path), str(path), path.read_bytes())
    return out


def request_part(splits: dict[str, AuthorsSplit]) -> dict[str, str]:
    """What identifies the annotation files in a fetch request: their sha256 by split."""
    return {split: part.sha256 for split, part in sorted(splits.items())}


def counts(splits: dict[str, AuthorsSplit]) -> dict[str, dict[str, int]]:
    return {split: {"images": len(part.images), "captions": part.captions} for split, part in splits.items()}
