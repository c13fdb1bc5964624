"""File-system plumbing for the results store: resolve a root (local path or any URI pyarrow understands,
e.g. s3://bucket/prefix, gs://bucket/prefix, file:///abs/path) to a pyarrow FileSystem and base path, list
Parquet files, and write a table atomically.  On a local file system a table is written under a hidden
temporary name in the same folder and renamed (harma.atomic, the one atomic writer); on object stores the
bytes go up in one put, which is atomic there.
"""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from harma.atomic import write_bytes_atomic


def resolve_root(root: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """(filesystem, base path without trailing slash) for a local path or a URI."""
    text = os.fspath(root)
    if "://" in text:
        fs, base = pafs.FileSystem.from_uri(text)
        return fs, base.rstrip("/")
    return pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())


def is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


def list_dir(fs: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    """Entries directly under `path` (none if it does not exist), sorted by name."""
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
    return sorted(infos, key=lambda i: i.base_name)


def parquet_files(fs: pafs.FileSystem, path: str) -> list[str]:
    """Visible `*.parquet` files directly under `path` (temporary and hidden files skipped)."""
    return [i.path for i in list_dir(fs, path)
            if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")
            and not i.base_name.startswith((".", "_"))]


def _serialize(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write `data` at `path` so readers see either the old file or the whole new one."""
    if is_local(fs):
        write_bytes_atomic(path, data)
        return
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as out:
        out.write(data)


def write_table_atomic(fs: pafs.FileSystem, path: str, table: pa.Table) -> None:
    """Write `table` as Parquet at `path` atomically (see write_bytes)."""
    write_bytes(fs, path, _serialize(table).to_pybytes())


def read_table(fs: pafs.FileSystem, path: str) -> pa.Table:
    """Read one Parquet file as it is (no partition discovery)."""
    with fs.open_input_file(path) as fh:
        return pq.ParquetFile(fh).read()


def read_schema(fs: pafs.FileSystem, path: str) -> pa.Schema:
    """The Arrow schema of one Parquet file (with its metadata), reading only the footer."""
    with fs.open_input_file(path) as fh:
        return pq.ParquetFile(fh).schema_arrow


def delete_file(fs: pafs.FileSystem, path: str) -> bool:
    """Delete `path` if it exists; return whether it did."""
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return False
    fs.delete_file(path)
    return True
