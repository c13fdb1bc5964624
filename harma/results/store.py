"""ResultsStore: write and read the Parquet tables of a results root, partitioned by study.

Layout under the root (a local path or a URI such as s3://bucket/prefix):
`trials/study=<name>/<trial_id>.parquet` (one file per trial, rewritten as the trial progresses),
`epochs/study=<name>/<trial_id>-e<epoch:04d>.parquet` (one file per reported epoch) and, for searches,
`importances/study=<name>/importances.parquet` (written by harma.tune).  Beside them, not read here:
`snapshots/<name>/` (the study as it ran, harma.study.snapshot) and the runner's `optuna/`, `runs/`, `ray/`.
Every write is atomic (see fsio), so a crash loses at most the epoch in flight.  A trial is written under its
study's `StudyColumns`, so every trials file of a study has the same columns; `conform` rewrites a study's files
that have other columns (files of schema 1.x, or written before the study file gained a parameter).  Readers
check each file's schema version, upgrade old files, merge the studies' parameter columns, and return pandas
frames with stable dtypes (Int64 for integers, float64, str, boolean, datetime64[us, UTC]).  A reader refuses,
naming the file, a value no trial can have (values.py: a recall outside [0, 100], negative seconds, ...) and two
files holding the same trial of a study, so nothing downstream ranks or counts them.  `dataset(table)` reads every
study of the root whole as one pyarrow dataset with the union of their columns (harma.results.dataset, which
also writes the note in `trials/` that makes a plain reader pointed at that folder fail loudly once two studies
there differ in their columns).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from harma.errors import ResultsFileError
from harma.atomic import remove_debris
from harma.results import fsio
from harma.results.root import PARTITION, fs_study_names
from harma.results.migrate import needs_rewrite, upgrade
from harma.results.schema import (
    EPOCH_KEYS,
    SCHEMA_VERSION,
    TRIAL_KEYS,
    Importances,
    RecordError,
    StudyColumns,
    check_version,
    epoch_schema,
    epoch_table,
    major,
    file_version,
    importance_schema,
    importance_table,
    kind_of_type,
    merge_kinds,
    trial_schema,
    trial_table,
)
from harma.results.trials import is_param_column, param_key
from harma.results.values import check_files

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _unreadable(path: str, exc: BaseException) -> ResultsFileError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ResultsFileError(f"results file {path}: cannot be read as Parquet ({first}); it is empty, truncated "
                            f"or not a harma results file")


def _read_table(fs: pafs.FileSystem, path: str) -> pa.Table:
    try:
        return fsio.read_table(fs, path)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None


def _read_schema(fs: pafs.FileSystem, path: str) -> pa.Schema:
    try:
        return fsio.read_schema(fs, path)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise RecordError(f"{what} {value!r}: use letters, digits and _ . + - (not starting with . or _), "
                          "since it becomes part of a file path")
    return value


def _types_mapper(arrow_type: pa.DataType) -> Any:
    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _to_frame(tables: list[pa.Table], empty: pa.Schema, first: tuple[str, ...]) -> pd.DataFrame:
    if not tables:
        tables = [empty.empty_table()]
    tables = [t.set_column(t.schema.get_field_index("study"), "study", t["study"].cast(pa.string()))
              for t in tables]
    merged = pa.concat_tables([t.replace_schema_metadata(None) for t in tables], promote_options="permissive")
    rest = sorted(c for c in merged.column_names if c not in first)
    merged = merged.select([c for c in first if c in merged.column_names] + rest)
    return merged.to_pandas(types_mapper=_types_mapper)


class ResultsStore:
    """The results root of one or many studies (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = os.fspath(root)
        self.fs, self.base = fsio.resolve_root(root)
        self._noted, self._compared = False, set()

    def __repr__(self) -> str:
        return f"ResultsStore({self.root!r})"

    # paths -------------------------------------------------------------------------------------------
    def _dir(self, table: str, study: str) -> str:
        return f"{self.base}/{table}/{PARTITION}{_check_name('study', study)}"

    def trial_path(self, study: str, trial_id: str) -> str:
        return f"{self._dir('trials', study)}/{_check_name('trial_id', trial_id)}.parquet"

    def epoch_path(self, study: str, trial_id: str, epoch: int) -> str:
        if int(epoch) < 0:
            raise RecordError(f"epoch report {trial_id}: epoch {epoch} is negative")
        return f"{self._dir('epochs', study)}/{_check_name('trial_id', trial_id)}-e{int(epoch):04d}.parquet"

    # writing -----------------------------------------------------------------------------------------
    def write_trial(self, record: Mapping[str, Any], columns: StudyColumns) -> str:
        """Write (or replace) the trial's row under its study's columns; `record` has the schema's keys
        (`RECORD_KEYS`) plus `params` (dict of dotted key -> value, each a parameter of `columns`)."""
        from harma.results.dataset import note_if_mixed

        table = trial_table(record, columns)
        path = self.trial_path(record["study"], record["trial_id"])
        fsio.write_table_atomic(self.fs, path, table)
        if not self._noted:            # one listing per write until the note is there (harma.results.dataset)
            self._noted = note_if_mixed(self, record["study"], table.schema.names, self._compared)
        return path

    def write_epoch(self, study: str, trial_id: str, epoch: int,
                    metrics: Mapping[str, Mapping[str, float]], seconds: float | None = None) -> str:
        """Write one epoch's metrics, `{split: {metric: value}}`, and the epoch's wall time in seconds."""
        path = self.epoch_path(study, trial_id, epoch)
        fsio.write_table_atomic(self.fs, path, epoch_table(study, trial_id, epoch, metrics, seconds))
        return path

    def importance_path(self, study: str) -> str:
        return f"{self._dir('importances', study)}/importances.parquet"

    def write_importances(self, imp: Importances) -> str:
        """Write (or replace) a study's parameter importances (or the reason it has none)."""
        path = self.importance_path(imp.study)
        fsio.write_table_atomic(self.fs, path, importance_table(imp))
        return path

    def read_importances(self, study: str) -> pd.DataFrame:
        """The study's importances table, most important first (no rows when none were computed)."""
        path = self.importance_path(study)
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            table = importance_schema().empty_table()
        else:
            table = _read_table(self.fs, path)
            check_version(table.schema, path)
        frame = _to_frame([table], importance_schema(), tuple(importance_schema().names))
        return frame.sort_values(["importance", "param"], ascending=[False, True], kind="stable",
                                 na_position="last").reset_index(drop=True)

    def remove_debris(self, study: str) -> list:
        """Remove the temporary files that killed writes left in the study's folders (local roots only; an object
        store has none); the caller must be the study's one writer (the driver holding its lock)."""
        if not fsio.is_local(self.fs):
            return []
        return [p for table in ("trials", "epochs", "importances") for p in remove_debris(self._dir(table, study))]

    def delete_trial(self, study: str, trial_id: str) -> int:
        """Remove a trial's row and all its epoch files (a restart from scratch); return files removed."""
        removed = int(fsio.delete_file(self.fs, self.trial_path(study, trial_id)))
        pattern = re.compile(re.escape(trial_id) + r"-e\d{4,}\.parquet")
        for path in fsio.parquet_files(self.fs, self._dir("epochs", study)):
            if pattern.fullmatch(path.rsplit("/", 1)[1]):
                removed += int(fsio.delete_file(self.fs, path))
        return removed

    # reading -----------------------------------------------------------------------------------------
    def studies(self) -> list[str]:
        """Names of the studies with a trials or epochs partition under the root, sorted."""
        return fs_study_names(self.fs, self.base, self.root)

    def files(self, table: str, study: str | None = None) -> list[str]:
        """The Parquet files of `table` (trials, epochs) of one study, or of every study under the root."""
        names = [study] if study is not None else self.studies()
        return [p for name in names for p in fsio.parquet_files(self.fs, self._dir(table, name))]

    def dataset(self, table: str = "trials"):
        """Every study's `table` as one pyarrow dataset whose schema is the union of the studies' columns (null
        where a study lacks one): `ResultsStore("results").dataset().to_table().to_pandas()`, or hand it to DuckDB
        or polars (`polars.scan_pyarrow_dataset`).  ResultsFileError for a file of an older schema (upgrade it
        with `harma study resume`, or use read_trials) or for columns whose types cannot be merged."""
        from harma.results.dataset import root_dataset

        return root_dataset(self, table)

    def conform(self, columns: StudyColumns) -> list[str]:
        """Rewrite the study's files whose columns differ from its schema (1.x files, parameters added to the
        study since); return the rewritten paths.  A file holding a value in a column the study no longer
        has is a RecordError naming the file and column, and nothing of it is dropped."""
        target, rewritten = trial_schema(columns), []
        for path in self.files("trials", columns.study):
            table = upgrade(_read_table(self.fs, path), "trials", path)
            if needs_rewrite(table, target):
                fsio.write_table_atomic(self.fs, path, _conform_trials(table, target, columns, path))
                rewritten.append(path)
        for path in self.files("epochs", columns.study):
            table = _read_table(self.fs, path)
            if major(file_version(table.schema)) != major(SCHEMA_VERSION):
                table = upgrade(table, "epochs", path).cast(epoch_schema())
                fsio.write_table_atomic(self.fs, path, table)
                rewritten.append(path)
        return rewritten

    def param_kinds(self, study: str) -> dict[str, str]:
        """{dotted key: bool | int | float | string} of the parameter columns in a study's trials files."""
        found: dict[str, list[str | None]] = {}
        for path in self.files("trials", study):
            schema = _read_schema(self.fs, path)
            check_version(schema, path)
            for f in schema:
                if is_param_column(f.name):
                    found.setdefault(param_key(f.name), []).append(kind_of_type(f.type))
        return {key: merge_kinds(key, kinds) for key, kinds in sorted(found.items())}

    def _read_all(self, files: list[str], kind: str) -> list[pa.Table]:
        def read_one(path: str) -> pa.Table:
            return upgrade(_read_table(self.fs, path), kind, path)

        if len(files) < 8:
            return [read_one(p) for p in files]
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(read_one, files))

    def read_trials(self, study: str | None = None) -> pd.DataFrame:
        """All trial rows (of one study, or every study), sorted by study and trial_id; ResultsFileError for a
        file holding an impossible value, or for two files holding the same trial."""
        files = self.files("trials", study)
        tables = self._read_all(files, "trials")
        check_files(tables, files, "trials")
        _check_one_row_per_trial(tables, files)
        frame = _to_frame(tables, trial_schema(), TRIAL_KEYS)
        return frame.sort_values(["study", "trial_id"], kind="stable").reset_index(drop=True)

    def read_epochs(self, study: str | None = None) -> pd.DataFrame:
        """All epoch rows, sorted by study, trial_id, epoch, split and metric; ResultsFileError for a file
        holding an impossible value."""
        files = self.files("epochs", study)
        tables = self._read_all(files, "epochs")
        check_files(tables, files, "epochs")
        frame = _to_frame(tables, epoch_schema(), EPOCH_KEYS)
        order = ["study", "trial_id", "epoch", "split", "metric"]
        return frame.sort_values(order, kind="stable").reset_index(drop=True)


def _trial_keys(table: pa.Table) -> pa.ChunkedArray:
    """`<study>/<trial_id>` of each row (a study name cannot hold a slash)."""
    return pc.binary_join_element_wise(table["study"].cast(pa.string()), table["trial_id"].cast(pa.string()), "/")


def _check_one_row_per_trial(tables: list[pa.Table], paths: list[str]) -> None:
    """ResultsFileError naming every file that holds a trial some other row holds too (a stray copy)."""
    if not tables:
        return
    keys = [_trial_keys(t) for t in tables]
    every = pa.chunked_array([c for k in keys for c in k.chunks], pa.string())
    if pc.count_distinct(every, mode="all").as_py() == len(every):
        return
    counts = pc.value_counts(every)
    twice = counts.field("values").filter(pc.greater(counts.field("counts"), 1))[0]
    if not twice.is_valid:
        where = next(p for p, k in zip(paths, keys) if k.null_count)
        raise ResultsFileError(f"results file {where}: a row has no study or trial_id; expected both")
    holders = [p for p, k in zip(paths, keys) if pc.any(pc.equal(k, twice)).as_py()]
    raise ResultsFileError(_duplicate_text(twice.as_py(), holders))


def _duplicate_text(key: str, holders: list[str]) -> str:
    study, trial_id = key.split("/", 1)
    if len(holders) == 1:
        return (f"results file {holders[0]}: holds trial {trial_id} of study {study} in more than one row; a "
                "trial has one row: move the file away and rerun the trial")
    both = "both" if len(holders) == 2 else f"all {len(holders)}"
    stray = [p for p in holders if p.rsplit("/", 1)[-1] != f"{trial_id}.parquet"]
    which = (f" ({', '.join(stray)}, whose name is not {trial_id}.parquet)"
             if stray and len(stray) < len(holders) else "")
    return (f"results files {', '.join(holders[:-1])} and {holders[-1]} {both} hold trial {trial_id} of study "
            f"{study}, which has one row: move the stray file{which} out of the study's trials folder")


def _conform_trials(table: pa.Table, target: pa.Schema, columns: StudyColumns, path: str) -> pa.Table:
    """`table` cast to the study's schema: missing columns null, the objective the study's."""
    for name in table.column_names:
        if name not in target.names and is_param_column(name) and table[name].null_count < table.num_rows:
            raise RecordError(f"{path}: column {name} holds values, but study {columns.study}'s schema has no such "
                              f"parameter; add it back to the study file, or move the file away")
    arrays = []
    for f in target:
        if f.name == "objective":
            arrays.append(pa.array([columns.objective] * table.num_rows, f.type))
        elif f.name == "objective_mode":
            arrays.append(pa.array([columns.objective_mode] * table.num_rows, f.type))
        elif f.name in table.column_names:
            try:
                arrays.append(table[f.name].cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise RecordError(f"{path}: column {f.name} cannot become {f.type}: {exc}") from None
        else:
            arrays.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(arrays, schema=target)
