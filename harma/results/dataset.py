"""Every study of a results root read whole: one pyarrow dataset whose schema is the union of the studies' columns,
and the note that makes a plain reader pointed at the trials folder itself fail instead of dropping columns.

Each study has its own schema (its `param.<key>` columns), so a reader given `<root>/trials` takes one file's
columns for every file: pandas and pyarrow silently keep those, DuckDB and polars refuse the mismatch.  One
root-wide schema would close that in the layout, but every study's files would then have to be rewritten
whenever any study adds a parameter, by drivers of other studies running at the same time; so the layout
keeps one schema per study, and instead `root_dataset(store)` reads every file's footer, unifies the schemas
(an int and a float column become float; columns a study lacks read as null) and returns
`pyarrow.dataset.dataset(files, schema=unified)`, which pandas (`.to_table().to_pandas()`), DuckDB (a
replacement scan of the variable) and polars (`scan_pyarrow_dataset`) read with every column.  `note_folder`
writes `trials/README.txt`, which is not Parquet, so `pandas.read_parquet("<root>/trials")` fails naming it
and the note says what to call instead.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from harma.errors import ResultsFileError
from harma.results import fsio
from harma.results.schema import (EPOCH_KEYS, SCHEMA_VERSION, TRIAL_KEYS, epoch_schema, file_version, major,
                                  trial_schema)

if TYPE_CHECKING:
    from harma.results.store import ResultsStore

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


def note_folder(fs: pafs.FileSystem, folder: str) -> None:
    """Write the note into a table folder (`<root>/trials`) unless it is there already."""
    path = f"{folder}/{NOTE}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        fsio.write_bytes(fs, path, NOTE_TEXT.encode())


def _schema_of(store: "ResultsStore", path: str) -> pa.Schema:
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


def root_dataset(store: "ResultsStore", table: str = "trials") -> ds.Dataset:
    """Every study's `table` (trials or epochs) under the store's root as one dataset with the union schema."""
    files = store.files(table)
    empty, first = (trial_schema(), TRIAL_KEYS) if table == "trials" else (epoch_schema(), EPOCH_KEYS)
    if not files:
        return ds.dataset([], schema=empty.remove_metadata(), format="parquet", filesystem=store.fs)
    with ThreadPoolExecutor(max_workers=8) as pool:
        schemas = list(pool.map(lambda p: _schema_of(store, p), files))
    return ds.dataset(files, schema=_unify(schemas, files, first), format="parquet", filesystem=store.fs)
