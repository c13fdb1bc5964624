"""Writing a fetched data set into its folder once: images, then annotation files, then a manifest.

A `Plan` says what a data set consists of: the images (relative paths under the image root, each with the
bytes a source yields), the annotation files (their bytes) and the `request` that produced it (data set,
split, source).  `install(plan)` first compares the manifest left by an earlier run: when it holds the same
request and every image and annotation file still has its recorded sha256, nothing is written.  Otherwise each
image is written atomically (harma.atomic) unless the file there already holds the same bytes, so a run that
was interrupted resumes without redoing finished files; the annotation files follow, and the manifest is
written last, so it exists only for a complete set.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator

from harma.data.manifest import MANIFEST_FORMAT, MANIFEST_NAME, read_manifest
from harma.atomic import write_bytes_atomic
from harma.errors import FetchError
from harma.fetch.registry import file_sha256

SHOWN = 5

Stream = Callable[[], Iterator[tuple[str, bytes]]]     # yields (key, bytes); Plan.wanted maps key -> paths


@dataclass(frozen=True)
class DataLayout:
    """Where a data set goes: what the shipped configs expect under `out` (default `data`)."""
    name: str
    out: Path

    @property
    def image_root(self) -> Path:
        return self.out / "images" / self.name

    def annotation(self, split: str) -> Path:
        return self.out / "finetune" / f"{self.name}_{split}.json"

    @property
    def manifest(self) -> Path:
        return self.image_root / MANIFEST_NAME


@dataclass
class Plan:
    layout: DataLayout
    request: dict[str, Any]                     # what produced the set: compared with the manifest's
    annotations: dict[str, bytes]               # split -> the bytes of its annotation file
    counts: dict[str, dict[str, int]]           # split -> {"images": n, "captions": m}
    wanted: dict[str, list[str]]                # stream key -> relative image paths that get its bytes
    stream: Stream = field(repr=False)


@dataclass(frozen=True)
class Installed:
    layout: DataLayout
    images: int
    written: int
    kept: int
    up_to_date: bool
    counts: dict[str, dict[str, int]]


def safe_relative(path: str, where: str) -> str:
    """`path` as a relative POSIX path inside the image root; FetchError for an absolute path or one with
    `..` (an annotation entry must not write outside the folder)."""
    pure = PurePosixPath(path.replace("\\", "/"))
    if not path or pure.is_absolute() or ".." in pure.parts or pure.parts[:1] == ("",):
        raise FetchError(f"{where}: image path {path!r} must be relative and stay inside the image root")
    return str(pure)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def up_to_date(plan_request: dict[str, Any], layout: DataLayout) -> bool:
    """The manifest holds this request and every file it lists still has its recorded size and sha256."""
    manifest = read_manifest(layout.image_root)
    if manifest is None or manifest.get("request") != plan_request:
        return False
    for rel, (digest, size) in manifest.get("images", {}).items():
        path = layout.image_root / rel
        if not path.is_file() or path.stat().st_size != size or _file_sha(path) != digest:
            return False
    return all(_file_sha(Path(entry["path"])) == entry["sha256"] for entry in manifest.get("annotations", {}).values())


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=None, dynamic_ncols=True)


def _write_if_changed(path: Path, data: bytes, digest: str) -> bool:
    """Write `data` to `path` atomically unless it already holds exactly these bytes; True when written."""
    if path.is_file() and path.stat().st_size == len(data) and _file_sha(path) == digest:
        return False
    write_bytes_atomic(path, data)
    return True


def _write_images(plan: Plan) -> tuple[dict[str, list], int, int]:
    images: dict[str, list] = {}
    written = kept = 0
    total = sum(len(paths) for paths in plan.wanted.values())
    with _progress(total, f"{plan.layout.name} images") as bar:
        for key, data in plan.stream():
            digest = sha256_bytes(data)
            for rel in plan.wanted.get(key, ()):
                if rel in images:
                    if images[rel][0] != digest:
                        raise FetchError(f"{plan.request.get('source')}: two different images for {rel}")
                    continue
                changed = _write_if_changed(plan.layout.image_root / rel, data, digest)
                written, kept = written + changed, kept + (not changed)
                images[rel] = [digest, len(data)]
                bar.update(1)
    return images, written, kept


def _check_complete(plan: Plan, images: dict[str, list]) -> None:
    missing = sorted(rel for paths in plan.wanted.values() for rel in paths if rel not in images)
    if missing:
        raise FetchError(f"{plan.layout.name}: {len(missing)} image(s) the annotations name were not in the "
                         f"source {plan.request.get('source')} (first: {', '.join(missing[:SHOWN])})")


def install(layout: DataLayout, request: dict[str, Any], make_plan: Callable[[], Plan]) -> Installed:
    """Nothing when the manifest says `request` is installed and intact (no source is read, no network);
    otherwise the plan's images, annotation files and manifest (module docstring).  FetchError when the source
    lacks an image the annotations name."""
    if up_to_date(request, layout):
        manifest = read_manifest(layout.image_root) or {}
        n = len(manifest.get("images", {}))
        return Installed(layout, n, 0, n, True, manifest.get("counts", {}))
    return _install(make_plan())


def _install(plan: Plan) -> Installed:
    images, written, kept = _write_images(plan)
    _check_complete(plan, images)
    annotations = {}
    for split, data in plan.annotations.items():
        path, digest = plan.layout.annotation(split), sha256_bytes(data)
        _write_if_changed(path, data, digest)
        annotations[split] = {"path": os.fspath(path), "sha256": digest}
    manifest = {"format": MANIFEST_FORMAT, "set": plan.layout.name, "request": plan.request,
                "counts": plan.counts, "annotations": annotations, "images": dict(sorted(images.items()))}
    write_bytes_atomic(plan.layout.manifest, (json.dumps(manifest, indent=0) + "\n").encode())
    return Installed(plan.layout, len(images), written, kept, False, plan.counts)


def wanted_by_basename(paths: Iterable[str]) -> dict[str, list[str]]:
    """basename -> the relative paths that name it (a source is matched by file name)."""
    out: dict[str, list[str]] = {}
    for rel in paths:
        out.setdefault(PurePosixPath(rel).name, [])
        if rel not in out[PurePosixPath(rel).name]:
            out[PurePosixPath(rel).name].append(rel)
    return out
