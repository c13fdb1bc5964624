"""The sha256 of every file harma fetched, recorded at its first fetch and checked on every later use.

The registry is one small json file, `$HF_HOME/harma/sha256.json` (beside huggingface_hub's own cache, so
HF_HOME moves both), written atomically with `harma.atomic`.  A key names a file of a repository at the commit
it was fetched from (`model/Zilun/GeoRSCLIP@<commit>/ckpt/...`), so a branch that moves to a new commit gets a
new record instead of a false alarm.  `check_file` hashes a cached file and compares it with, in order, the
hash published for that revision (`HubFile.sha256`), the record, and the ETag the blob is named after (the
content's sha256 for files stored with LFS or Xet); any difference is a `FetchError` naming the file.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from harma.atomic import write_text_atomic
from harma.errors import FetchError
from harma.fetch.hub import HubSettings, blob_etag, hub_settings, snapshot_commit
from harma.fetch.sources import HubFile

REGISTRY_FILE = Path("harma") / "sha256.json"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
CHUNK = 8 << 20


@dataclass(frozen=True)
class Record:
    sha256: str
    size: int
    recorded_at: str         # UTC, ISO 8601


@dataclass(frozen=True)
class CheckedFile:
    """A cached file whose sha256 matched (or was just recorded)."""
    file: HubFile
    path: Path
    commit: str
    sha256: str
    size: int
    recorded_now: bool
    registry: Path


def registry_path(settings: HubSettings | None = None) -> Path:
    return (settings or hub_settings()).hf_home / REGISTRY_FILE


def record_key(file: HubFile, commit: str) -> str:
    return f"{file.repo_type}/{file.repo_id}@{commit}/{file.filename}"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_registry(path: Path) -> dict[str, Record]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {key: Record(**value) for key, value in data["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FetchError(f"{path}: not a harma sha256 registry ({type(exc).__name__}: {exc}); move it away and "
                         f"run `harma fetch` again to record the hashes anew") from None


def add_record(path: Path, key: str, record: Record) -> None:
    files = read_registry(path)
    files[key] = record
    body = {"format": 1, "files": {k: asdict(v) for k, v in sorted(files.items())}}
    write_text_atomic(path, json.dumps(body, indent=1) + "\n")


def _mismatch(path: Path, digest: str, expected: str, what: str, again: str) -> FetchError:
    return FetchError(f"{path}: sha256 {digest} differs from {expected}, {what}; the file changed or is corrupt: "
                      f"delete it and {again}")


def check_file(file: HubFile, path: Path, may_record: bool, again: str) -> CheckedFile:
    """Hash the cached `path` of `file` and check it (module docstring); record it when there is no record
    yet and `may_record`, else a missing record is a FetchError telling to run `again`."""
    settings = hub_settings()
    registry = registry_path(settings)
    commit = snapshot_commit(path, file)
    digest, size = file_sha256(path), path.stat().st_size
    key = record_key(file, commit)
    if file.sha256 and digest != file.sha256:
        raise _mismatch(path, digest, file.sha256, f"the hash published for {file.label}", again)
    record = read_registry(registry).get(key)
    if record is not None and record.sha256 != digest:
        raise _mismatch(path, digest, record.sha256, f"the hash recorded at its first fetch ({registry}, "
                                                     f"{record.recorded_at})", again)
    etag = blob_etag(path)
    if etag and SHA256_RE.fullmatch(etag) and etag != digest:
        raise _mismatch(path, digest, etag, "the sha256 the Hub sent as its ETag", again)
    if record is None:
        if not may_record:
            raise FetchError(f"{path}: no sha256 recorded for {file.label} in {registry}; {again} (it finds the "
                             f"cached file and records its hash)")
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        add_record(registry, key, Record(digest, size, now))
    return CheckedFile(file, path, commit, digest, size, record is None, registry)
