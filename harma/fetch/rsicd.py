"""RSICD from the Hugging Face data set `arampacha/rsicd`: three Parquet files (train / valid / test, 8,734 /
1,094 / 1,093 images, columns `filename`, `captions` (5 strings) and `image` (a struct whose `bytes` hold the
JPEG)), turned into the folder layout and json files the shipped rsicd configs read.

The split is the user's choice, `hub` or `authors`: `hub` keeps the Hub's three splits (its `valid` becomes
`val`) and writes annotation files from the Parquet captions; `authors` copies the HarMA authors' three json
files (their val has 1,966 images) and takes from the Hub only the images they name, matched by file name.
The Parquet files come through the Hub cache (pinned revision, sha256 checked), or from a folder holding the
same three files downloaded by hand (`--from`).  Images are written byte for byte, never re-encoded.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from harma.data.annotations import clean_caption
from harma.errors import DataError, FetchError
from harma.fetch import authors
from harma.fetch.install import DataLayout, Plan, safe_relative, wanted_by_basename
from harma.fetch.sources import RSICD_PARQUET, HubFile

HUB_SPLITS = {"train": "train", "val": "valid", "test": "test"}     # harma split -> the Hub's name
BATCH_ROWS = 256


def _pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise FetchError("reading the RSICD Parquet files needs pyarrow: pip install 'harma[fetch]'") from None
    return pq


def _files(revision: str | None) -> dict[str, HubFile]:
    return {split: f.at(revision) for split, f in RSICD_PARQUET.items()}


def source_label(revision: str | None, from_dir: Path | None) -> str:
    first = next(iter(_files(revision).values()))
    return f"local:{from_dir.resolve()}" if from_dir else f"hf:datasets/{first.repo_id}@{first.revision}"


def parquet_paths(revision: str | None, from_dir: Path | None) -> dict[str, Path]:
    """split -> local Parquet file: from the Hub cache (downloading, sha256 checked) or from `from_dir`
    (checked against the published sha256 at the pinned revision)."""
    from harma.fetch.hub import file_url, hub_download
    from harma.fetch.registry import check_file, file_sha256

    files = _files(revision)
    if from_dir is None:
        again = "run `harma fetch data rsicd` again"
        return {split: check_file(f, hub_download(f, False, f"pass the folder holding it as --from DIR "
                                                            f"({file_url(f)})"), may_record=True, again=again).path
                for split, f in files.items()}
    paths = {split: from_dir / PurePosixPath(f.filename).name for split, f in files.items()}
    for split, path in paths.items():
        if not path.is_file():
            raise FetchError(f"--from {from_dir}: expected {path.name} there ({files[split].label})")
        if files[split].sha256 and file_sha256(path) != files[split].sha256:
            raise FetchError(f"{path}: sha256 differs from {files[split].sha256}, the published hash of "
                             f"{files[split].label}; download it again")
    return paths


def _check_schema(path: Path) -> None:
    schema = _pyarrow().read_schema(path)
    names = schema.names
    image = schema.field("image").type if "image" in names else None
    ok = ("filename" in names and "captions" in names and image is not None
          and getattr(image, "num_fields", 0) and image.get_field_index("bytes") >= 0)
    if not ok:
        found = ", ".join(f"{f.name} ({f.type})" for f in schema)
        raise FetchError(f"{path}: expected columns filename, captions (list of strings) and image (a struct with "
                         f"bytes), as arampacha/rsicd has; found {found}")


def read_rows(path: Path) -> list[tuple[str, list[str]]]:
    """(filename, captions) of every row, file order (no image bytes)."""
    _check_schema(path)
    table = _pyarrow().read_table(path, columns=["filename", "captions"])
    return list(zip(table.column("filename").to_pylist(), table.column("captions").to_pylist()))


def stream_images(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    """(file name, image bytes) of every row of the Parquet files, read a batch at a time."""
    pq = _pyarrow()
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=["filename", "image"]):
            for name, image in zip(batch.column("filename").to_pylist(), batch.column("image").to_pylist()):
                if not image or image.get("bytes") is None:
                    raise FetchError(f"{path}: row {name!r} has no image bytes")
                yield PurePosixPath(name).name, image["bytes"]


def _hub_annotations(split: str, rows: list[tuple[str, list[str]]], path: Path) -> tuple[bytes, list[str], int]:
    """The annotation file of one Hub split in the authors' format, its image paths and caption count."""
    entries: list[dict[str, Any]] = []
    images = []
    for k, (name, captions) in enumerate(rows):
        where = f"{path} row {k} ({name})"
        rel = safe_relative(name, where)
        if not captions:
            raise FetchError(f"{where}: no captions")
        for j, caption in enumerate(captions):
            try:
                clean_caption(caption, where=f"{where} caption {j}")
            except DataError as exc:
                raise FetchError(str(exc)) from None
        images.append(rel)
        if split == "train":
            entries += [{"caption": c, "image": rel, "image_id": k} for c in captions]
        else:
            entries.append({"image": rel, "caption": list(captions)})
    return json.dumps(entries, indent=0).encode(), images, sum(len(c) for _, c in rows)


def hub_plan(layout: DataLayout, request: dict[str, Any], paths: dict[str, Path]) -> Plan:
    annotations, counts, images = {}, {}, []
    for split, path in paths.items():
        data, split_images, n_captions = _hub_annotations(split, read_rows(path), path)
        annotations[split], counts[split] = data, {"images": len(split_images), "captions": n_captions}
        images += split_images
    return Plan(layout, request, annotations, counts, wanted_by_basename(images),
                lambda: stream_images(list(paths.values())))


def authors_plan(layout: DataLayout, request: dict[str, Any], paths: dict[str, Path],
                 splits: dict[str, authors.AuthorsSplit]) -> Plan:
    wanted = wanted_by_basename(rel for part in splits.values() for rel in part.images)
    hub_names = {PurePosixPath(name).name for path in paths.values() for name, _ in read_rows(path)}
    missing = sorted(set(wanted) - hub_names)
    if missing:
        raise FetchError(f"{len(missing)} image(s) the authors' files name are not in {request['source']} "
                         f"(first: {', '.join(missing[:5])})")
    return Plan(layout, request, {s: p.data for s, p in splits.items()}, authors.counts(splits), wanted,
                lambda: stream_images(list(paths.values())))


def rsicd_fetch(layout: DataLayout, split: str | None, revision: str | None, from_dir: Path | None,
                authors_json: Path | None) -> tuple[dict[str, Any], Callable[[], Plan]]:
    """(request, plan maker) of an RSICD fetch (module docstring); the request needs no network."""
    if split is None:
        raise FetchError("rsicd: choose the split: --split hub (the Hub's train / valid / test: 8,734 / 1,094 / "
                         "1,093 images) or --split authors --authors-json DIR (the HarMA authors' json files: "
                         "7,862 / 1,966 / 1,093, as in the paper)")
    if split == "authors" and authors_json is None:
        raise FetchError("--split authors: give the folder of the authors' rsicd_train.json, rsicd_val.json and "
                         "rsicd_test.json as --authors-json DIR")
    if split == "hub" and authors_json is not None:
        raise FetchError("--authors-json: only with --split authors (the hub split writes its own annotations)")
    request: dict[str, Any] = {"set": "rsicd", "split": split, "source": source_label(revision, from_dir)}
    if split == "hub":
        return request, lambda: hub_plan(layout, request, parquet_paths(revision, from_dir))
    splits = authors.load_folder("rsicd", authors_json)
    request["annotations"] = authors.request_part(splits)
    return request, lambda: authors_plan(layout, request, parquet_paths(revision, from_dir), splits)


def describe_split(split: str) -> str:
    if split == "hub":
        return ("split hub: the Hub's train / valid / test (8,734 / 1,094 / 1,093 images in arampacha/rsicd); "
                "the HarMA paper used the authors' split (7,862 / 1,966 / 1,093): --split authors")
    return "split authors: the HarMA authors' json files select the images (their val has 1,966 images)"
