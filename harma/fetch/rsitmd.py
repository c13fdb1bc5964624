"""RSITMD from a local copy: no stable Hub copy is known, so the images come from the data set authors' release
as the user has it, a folder or an archive (zip, or tar, compressed or not), given as `--from`.

The split is the HarMA authors' (3,435 / 856 / 452 images): their `rsitmd_train.json`, `rsitmd_val.json` and
`rsitmd_test.json` come from `--authors-json DIR`, or from inside the `--from` folder or archive when they are
there.  Those files select the images, matched by file name wherever they sit in the source; each is written
to the image root under the path its annotation entry names (never outside it).
"""
from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from harma.errors import FetchError
from harma.fetch import authors
from harma.fetch.install import DataLayout, Plan, wanted_by_basename

Entry = tuple[str, Callable[[], bytes]]          # (path inside the source, read its bytes)


def _folder_entries(src: Path) -> Iterator[Entry]:
    for parent, dirs, names in os.walk(src):
        dirs.sort()
        for name in sorted(names):
            path = Path(parent) / name
            yield str(path.relative_to(src)), path.read_bytes


def _zip_entries(src: Path) -> Iterator[Entry]:
    with zipfile.ZipFile(src) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                yield info.filename, (lambda info=info: archive.read(info))


def _tar_entries(src: Path) -> Iterator[Entry]:
    with tarfile.open(src, "r:*") as archive:
        for member in archive:
            if member.isfile():
                yield member.name, (lambda member=member: archive.extractfile(member).read())


def source_entries(src: Path) -> Iterator[Entry]:
    """Every file of a folder, zip or tar archive, in a stable order; FetchError for anything else."""
    if src.is_dir():
        return _folder_entries(src)
    if not src.is_file():
        raise FetchError(f"--from {src}: no such folder or archive")
    if zipfile.is_zipfile(src):
        return _zip_entries(src)
    if tarfile.is_tarfile(src):
        return _tar_entries(src)
    raise FetchError(f"--from {src}: expected a folder, a zip or a tar archive (.tar, .tar.gz, .tgz, ...)")


def _annotations_in_source(src: Path) -> dict[str, authors.AuthorsSplit]:
    names = {name: split for split, name in authors.file_names("rsitmd").items()}
    found: dict[str, authors.AuthorsSplit] = {}
    for member, read in source_entries(src):
        split = names.get(PurePosixPath(member).name)
        if split is None:
            continue
        if split in found:
            raise FetchError(f"--from {src}: two {PurePosixPath(member).name} files ({found[split].label}, "
                             f"{src}:{member}); pass the right folder as --authors-json DIR")
        found[split] = authors.load_split_bytes(split, read(), f"{src}:{member}")
    missing = [name for name, split in names.items() if split not in found]
    if missing:
        raise FetchError(f"--from {src}: no {', '.join(missing)} inside; pass the folder of the HarMA authors' "
                         f"annotation files (their repository's data/finetune/) as --authors-json DIR")
    return found


def _stream(src: Path, wanted: dict[str, list[str]]) -> Iterator[tuple[str, bytes]]:
    for member, read in source_entries(src):
        name = PurePosixPath(member).name
        if name in wanted:
            yield name, read()


def rsitmd_fetch(layout: DataLayout, src: Path | None, authors_json: Path | None
                 ) -> tuple[dict[str, Any], Callable[[], Plan]]:
    """(request, plan maker) of an RSITMD fetch from `src` (module docstring); only local files are read."""
    if src is None:
        raise FetchError("rsitmd: give the RSITMD images as --from ARCHIVE_OR_FOLDER (no Hub copy is known)")
    splits = authors.load_folder("rsitmd", authors_json) if authors_json else _annotations_in_source(src)
    wanted = wanted_by_basename(rel for part in splits.values() for rel in part.images)
    request = {"set": "rsitmd", "split": "authors", "source": f"local:{src.resolve()}",
               "annotations": authors.request_part(splits)}
    return request, lambda: Plan(layout, request, {s: p.data for s, p in splits.items()}, authors.counts(splits),
                                 wanted, lambda: _stream(src, wanted))
