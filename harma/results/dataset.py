"""Every study of a results root read whole: one pyarrow dataset whose schema is the union of the studies' columns,
and the note that makes a plain reader pointed at the trials folder itself fail instead of dropping columns.

Each study has its own schema (its `param.<key>` columns), so a reader given `<root>/trials` takes one file's
columns for every file: pandas and pyarrow silently keep those, DuckDB and polars refuse the mismatch.  One
root-wide schema would close that in the layout, but every study's files would then have to be rewritten
whenever any study adds a parameter, by drivers of other studies running at the same time; so the layout
keeps one schema per study, and instead `root_dataset(store)` reads every file's footer, unifies the schemas
(an int and a float column become float; columns a study lacks read as null) and returns
`pyarrow.dataset.dataset(files, schema=unified)`, which pandas (`.to_table().to_pandas()`), DuckDB (a
replacement scan of the variable) and polars (`scan_pyarrow_dataset`) read with every column.  As soon as the
root holds two studies whose columns differ (the writer compares one file of each other study the first time
it sees it), `note_if_mixed` writes `trials/README.txt`, which is not Parquet, so
`pandas.read_parquet("<root>/trials")` fails naming it, and the note says what to call instead; a root whose
studies share their columns stays readable whole by any reader.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from harma.errors import ResultsFileError
from harma.results import fsio
from harma.results.root import PARTITION
from harma.results.schema import (EPOCH_KEYS, SCHEMA_VERSION, TRIAL_KEYS, epoch_schema, file_version, major,
                                  trial_schema)

# `store` below is a harma.results.store.ResultsStore (its .fs, .base and .files), passed in by the store itself.
NOTE = "README.txt"
NOTE_TEXT = """This folder is not one table: it holds one folder per study (study=NAME), and studies differ in
their parameter columns.  A reader pointed at this folder takes one file's columns for every file (pandas and
pyarrow drop the others without a word), so this file is here to make such a read fail.

Read one study:        pandas.read_parquet("<root>/trials/study=NAME")
Read every study whole (the union of their columns, null where a study has no such parameter):
    from harma.results.store import ResultsStore
    dataset = ResultsStore("<root>").dataset()          # a pyarrow dataset; .to_table().to_pandas()
or write them to one file: harma results export --all --format parquet
"""


def _columns_of(fs: pafs.FileSystem, folder: str) -> set[str] | None:
    """The column names of the first trials file in a study's folder (None: no file, or one not readable)."""
    files = fsio.parquet_files(fs, folder)
    try:
        return set(fsio.read_schema(fs, files[0]).names) if files else None
    except (pa.ArrowException, OSError):      # the readers name a broken file; the note can wait
        return None


def note_if_mixed(store: Any, study: str, columns: list[str], compared: set[str]) -> bool:
    """Write `<root>/trials/README.txt` when another study under the root has other columns than `columns` (those
    of `study`); `compared` holds the studies already compared (updated).  True once the note is there."""
    folder = f"{store.base}/trials"
    note = f"{folder}/{NOTE}"
    if store.fs.get_file_info(note).type != pafs.FileType.NotFound:
        return True
    mine = set(columns)
    for info in fsio.list_dir(store.fs, folder):
        other = info.base_name[len(PARTITION):]
        if info.type != pafs.FileType.Directory or not info.base_name.startswith(PARTITION) or other == study \
                or other in compared:
            continue
        theirs = _columns_of(store.fs, info.path)
        if theirs is None:
            continue
        compared.add(other)
        if theirs != mine:
            fsio.write_bytes(store.fs, note, NOTE_TEXT.encode())
            return True
    return False


def _schema_of(store: Any, path: str) -> pa.Schema:
    try:
        schema = fsio.read_schema(store.fs, path)
    except (pa.ArrowException, OSError) as exc:
        raise ResultsFileError(f"results file {path}: cannot be read as Parquet ({exc}); it is empty, truncated "
                               "or not a harma results file") from None
    if major(file_version(schema)) != major(SCHEMA_VERSION):
        raise ResultsFileError(f"results file {path}: schema {file_version(schema)}, not {SCHEMA_VERSION}; "
                               "`harma study resume NAME` rewrites its study's files, or read them through "
                               "ResultsStore.read_trials(), which upgrades them")
    return schema.remove_metadata()


def _unify(schemas: list[pa.Schema], files: list[str], first: tuple[str, ...]) -> pa.Schema:
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ResultsFileError(f"results files under {files[0].rsplit('/', 3)[0]}: the studies' columns cannot "
                               f"share one schema ({exc}); read them one study at a time") from None
    names = [n for n in first if n in unified.names] + sorted(n for n in unified.names if n not in first)
    return pa.schema([unified.field(n) for n in names])


def root_dataset(store: Any, table: str = "trials") -> ds.Dataset:
    """Every study's `table` (trials or epochs) under the store's root as one dataset with the union schema."""
    files = store.files(table)
    empty, first = (trial_schema(), TRIAL_KEYS) if table == "trials" else (epoch_schema(), EPOCH_KEYS)
    if not files:
        return ds.dataset([], schema=empty.remove_metadata(), format="parquet", filesystem=store.fs)
    with ThreadPoolExecutor(max_workers=8) as pool:
        schemas = list(pool.map(lambda p: _schema_of(store, p), files))
    return ds.dataset(files, schema=_unify(schemas, files, first), format="parquet", filesystem=store.fs)
