"""Export results to one file: a study's (or every study's) trials or epochs, every column, CSV or Parquet.

Plain readers take the columns of one file for a whole folder, and studies differ in their parameter
columns, so a file holding several studies is made here: `export(store, study=None)` reads through the store
(which merges every study's columns, null where a study has no such parameter) and writes one file.  The
default destination is `<results root>/exports/<study or all-studies>-<table>.<format>`; nothing is written
anywhere else unless the caller names a file.  A local file is written by harma.atomic as given (no symbolic
link followed): only a missing path or a regular file is replaced, so `--out /dev/null`, a FIFO or a folder is
refused, and a write that fails (a full disk, a read-only folder, a file in the way of its folder) is one
ResultsError naming `--out` and the file asked for, never a temporary name.  A URI goes through pyarrow.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from harma.atomic import write_bytes_atomic
from harma.errors import ResultsError, WriteError
from harma.results import fsio
from harma.results.store import ResultsStore

FORMATS = ("csv", "parquet")
TABLES = ("trials", "epochs")
ALL = "all-studies"


@dataclass(frozen=True)
class Exported:
    path: str
    rows: int
    columns: int


def default_path(store: ResultsStore, study: str | None, table: str, fmt: str) -> str:
    return f"{store.root.rstrip('/')}/exports/{study or ALL}-{table}.{fmt}"


def _encode(frame, fmt: str) -> bytes:
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()


def export(store: ResultsStore, study: str | None, table: str = "trials", fmt: str = "csv",
           out: str | os.PathLike | None = None) -> Exported:
    """Write one study's table (or every study's, `study=None`) to `out` or the default path."""
    if fmt not in FORMATS:
        raise ResultsError(f"export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if table not in TABLES:
        raise ResultsError(f"export table {table!r}: expected one of {', '.join(TABLES)}")
    names = store.studies()
    if study is not None and study not in names:
        raise ResultsError(f"export: no study {study!r} under {store.root} (studies: {', '.join(names) or 'none'})")
    if study is None and not names:
        raise ResultsError(f"export --all: no studies under {store.root}")
    frame = store.read_trials(study) if table == "trials" else store.read_epochs(study)
    target = os.fspath(out) if out is not None else default_path(store, study, table, fmt)
    named = f"export --out {target}" if out is not None else f"export {target}"
    data = _encode(frame, fmt)
    try:
        _write(target, data, named)
    except WriteError as exc:
        raise ResultsError(f"{named}: {exc}") from None
    return Exported(target, len(frame), len(frame.columns))


def _write(target: str, data: bytes, named: str) -> None:
    """A local path as given, by harma.atomic (which replaces only a regular file or a missing path); a URI
    (s3://, gs://, file://) through pyarrow's file system for it."""
    if "://" in target:
        fs, path = fsio.resolve_root(target)
        if isinstance(fs, pafs.LocalFileSystem) and os.path.isdir(path):
            raise ResultsError(f"{named}: is a folder; give a file name")
        fsio.write_bytes(fs, path, data)
        return
    path = Path(target).expanduser()
    if path.is_dir():
        raise ResultsError(f"{named}: is a folder; give a file name")
    write_bytes_atomic(path, data)
