"""ResultsStore: write and read the two Parquet tables of a results root, partitioned by study.

Layout under the root (a local path or a URI such as s3://bucket/prefix):
`trials/study=<name>/<trial_id>.parquet` (one file per trial, rewritten as the trial progresses) and
`epochs/study=<name>/<trial_id>-e<epoch:04d>.parquet` (one file per reported epoch).  Every write is atomic
(see fsio), so a crash loses at most the epoch in flight.  Readers check each file's schema version, merge
the per-study parameter columns, and return pandas frames with stable dtypes (Int64 for integers, float64,
str, boolean, datetime64[us, UTC]); the same trees also read with plain `pandas.read_parquet(<root>/trials)`.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from harma.results import fsio
from harma.results.schema import (
    EPOCH_FIELDS,
    PARAM_PREFIX,
    TRIAL_KEYS,
    RecordError,
    check_version,
    epoch_schema,
    epoch_table,
    trial_schema,
    trial_table,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_PARTITION = "study="


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

    def __repr__(self) -> str:
        return f"ResultsStore({self.root!r})"

    # paths -------------------------------------------------------------------------------------------
    def _dir(self, table: str, study: str) -> str:
        return f"{self.base}/{table}/{_PARTITION}{_check_name('study', study)}"

    def trial_path(self, study: str, trial_id: str) -> str:
        return f"{self._dir('trials', study)}/{_check_name('trial_id', trial_id)}.parquet"

    def epoch_path(self, study: str, trial_id: str, epoch: int) -> str:
        if int(epoch) < 0:
            raise RecordError(f"epoch report {trial_id}: epoch {epoch} is negative")
        return f"{self._dir('epochs', study)}/{_check_name('trial_id', trial_id)}-e{int(epoch):04d}.parquet"

    # writing -----------------------------------------------------------------------------------------
    def write_trial(self, record: Mapping[str, Any]) -> str:
        """Write (or replace) the trial's row; `record` has the schema's keys plus `params` (dict)."""
        table = trial_table(record)
        path = self.trial_path(record["study"], record["trial_id"])
        fsio.write_table_atomic(self.fs, path, table)
        return path

    def write_epoch(self, study: str, trial_id: str, epoch: int,
                    metrics: Mapping[str, Mapping[str, float]], seconds: float | None = None) -> str:
        """Write one epoch's metrics, `{split: {metric: value}}`, and the epoch's wall time in seconds."""
        path = self.epoch_path(study, trial_id, epoch)
        fsio.write_table_atomic(self.fs, path, epoch_table(study, trial_id, epoch, metrics, seconds))
        return path

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
        names: set[str] = set()
        for table in ("trials", "epochs"):
            for info in fsio.list_dir(self.fs, f"{self.base}/{table}"):
                if info.type == pafs.FileType.Directory and info.base_name.startswith(_PARTITION):
                    names.add(info.base_name[len(_PARTITION):])
        return sorted(names)

    def _files(self, table: str, study: str | None) -> list[str]:
        names = [study] if study is not None else self.studies()
        return [p for name in names for p in fsio.parquet_files(self.fs, self._dir(table, name))]

    def _read_all(self, files: list[str]) -> list[pa.Table]:
        def read_one(path: str) -> pa.Table:
            table = fsio.read_table(self.fs, path)
            check_version(table.schema, path)
            return table

        if len(files) < 8:
            return [read_one(p) for p in files]
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(read_one, files))

    def read_trials(self, study: str | None = None) -> pd.DataFrame:
        """All trial rows (of one study, or every study), sorted by study and trial_id."""
        frame = _to_frame(self._read_all(self._files("trials", study)), trial_schema(), TRIAL_KEYS)
        return frame.sort_values(["study", "trial_id"], kind="stable").reset_index(drop=True)

    def read_epochs(self, study: str | None = None) -> pd.DataFrame:
        """All epoch rows, sorted by study, trial_id, epoch, split and metric."""
        keys = tuple(f.name for f in EPOCH_FIELDS)
        frame = _to_frame(self._read_all(self._files("epochs", study)), epoch_schema(), keys)
        order = ["study", "trial_id", "epoch", "split", "metric"]
        return frame.sort_values(order, kind="stable").reset_index(drop=True)


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The `param.<key>` columns of a trials frame, in order."""
    return [c for c in frame.columns if c.startswith(PARAM_PREFIX)]
