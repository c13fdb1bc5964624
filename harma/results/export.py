"""Export results to one file: a study's (or every study's) trials or epochs, every column, CSV or Parquet.

Plain readers take the columns of one file for a whole folder, and studies differ in their parameter
columns, so a file holding several studies is made here: `export(store, study=None)` reads through the store
(which merges every study's columns, null where a study has no such parameter) and writes one file.  The
default destination is `<results root>/exports/<study or all-studies>-<table>.<format>`; nothing is written
anywhere else unless the caller names a file.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from harma.errors import ResultsError
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
    fs, path = fsio.resolve_root(target)
    if isinstance(fs, pafs.LocalFileSystem) and os.path.isdir(path):
        raise ResultsError(f"export --out {target}: is a folder; give a file name")
    fsio.write_bytes(fs, path, _encode(frame, fmt))
    return Exported(target, len(frame), len(frame.columns))
