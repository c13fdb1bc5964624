"""The one explicit, versioned Arrow schema of the two results tables, `trials` and `epochs`, per study.

A trial row holds one trial's outcome (status, the study's objective and its mode, best validation metrics,
test metrics at the best validation epoch, cost, memory, provenance and the resolved config as YAML) plus one
typed `param.<dotted key>` column for every parameter the study can set.  Which parameters those are is fixed
when the study is loaded and handed to the writer as a `StudyColumns`; every trial file of a study then has
exactly the same columns (null where a trial did not set a parameter), so pandas, DuckDB and polars read a
study's folder whole with their default calls.  An epoch row is one metric of one split at one epoch (long,
tidy format; its columns are the same for every study).  The version is a column (`schema_version`) and
file metadata; files of an older major version are upgraded on read (see migrate.py).  The `study` column
is dictionary-encoded so it merges with the hive partition key (`study=<name>`).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from harma.errors import RecordError, SchemaVersionError
from harma.results.trials import STATUSES, is_missing, plain, param_column, row_overrides
from harma.terms import KINDS, MODES
from harma.results.values import RECALL_COLUMNS, check_record

SCHEMA_VERSION = "2.1"          # 2.1 added error_type
READABLE_MAJORS = ("1", "2")          # 1.x files are upgraded on read
VERSION_KEY = b"harma.schema_version"
TABLE_KEY = b"harma.table"
SPLITS = ("val", "test", "train")

STUDY_TYPE = pa.dictionary(pa.int32(), pa.string())
TIMESTAMP = pa.timestamp("us", tz="UTC")
PARAM_TYPES: dict[str, pa.DataType] = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
                                       "string": pa.string()}


def trial_column(split: str, metric: str) -> str:
    """`<split>_<metric>`: the trials column of `metric` on `split` at the trial's best (val) epoch."""
    return f"{split}_{metric}"


OBJECTIVE_COLUMNS = RECALL_COLUMNS      # val_/test_ recalls in percent; values.py checks them in [0, 100]


def _fixed_trial_fields() -> list[pa.Field]:
    fields = [
        pa.field("study", STUDY_TYPE, nullable=False),
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("arm", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("objective", pa.string(), nullable=False),
        pa.field("objective_mode", pa.string(), nullable=False),
        pa.field("stop_epoch", pa.int64()),
        pa.field("best_epoch", pa.int64()),
        pa.field("warm_start_from", pa.string()),      # "<study>/<trial id>" whose parameters seeded this one
    ]
    fields += [pa.field(name, pa.float64()) for name in OBJECTIVE_COLUMNS]
    fields += [
        pa.field("trainable_params", pa.int64()),
        pa.field("total_params", pa.int64()),
        pa.field("wall_seconds", pa.float64()),
        pa.field("gpu_seconds", pa.float64()),
        pa.field("peak_rss_bytes", pa.int64()),
        pa.field("peak_gpu_bytes", pa.int64()),
        pa.field("error", pa.string()),
        pa.field("error_type", pa.string()),           # the error's class (harma.errors.is_curable reads it)
        pa.field("resolved_config", pa.string()),
        pa.field("git_commit", pa.string()),
        pa.field("git_dirty", pa.bool_()),
        pa.field("package_versions", pa.string()),
        pa.field("host", pa.string()),
        pa.field("node_id", pa.string()),
        pa.field("gpu_name", pa.string()),
        pa.field("gpu_count", pa.int64()),
        pa.field("cuda_version", pa.string()),
        pa.field("started_at", TIMESTAMP),
        pa.field("finished_at", TIMESTAMP),
        pa.field("schema_version", pa.string(), nullable=False),
    ]
    return fields


TRIAL_FIELDS: tuple[pa.Field, ...] = tuple(_fixed_trial_fields())
TRIAL_KEYS: tuple[str, ...] = tuple(f.name for f in TRIAL_FIELDS)
FROM_COLUMNS = ("schema_version", "objective", "objective_mode")   # filled by the writer, not the record
RECORD_KEYS: tuple[str, ...] = tuple(k for k in TRIAL_KEYS if k not in FROM_COLUMNS)
REQUIRED_TRIAL_KEYS = ("study", "trial_id", "kind", "status")

EPOCH_FIELDS: tuple[pa.Field, ...] = (
    pa.field("study", STUDY_TYPE, nullable=False),
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("epoch", pa.int64(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("metric", pa.string(), nullable=False),
    pa.field("value", pa.float64()),
    pa.field("seconds", pa.float64()),
    pa.field("schema_version", pa.string(), nullable=False),
)
EPOCH_KEYS: tuple[str, ...] = tuple(f.name for f in EPOCH_FIELDS)

IMPORTANCE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("study", STUDY_TYPE, nullable=False),
    pa.field("param", pa.string()),                 # null in the one row of a failed computation
    pa.field("importance", pa.float64()),
    pa.field("evaluator", pa.string()),
    pa.field("n_trials", pa.int64(), nullable=False),   # the COMPLETE Optuna trials behind the values
    pa.field("reason", pa.string()),                # why there are no importances (null when there are)
    pa.field("computed_at", TIMESTAMP, nullable=False),
    pa.field("schema_version", pa.string(), nullable=False),
)


# ------------------------------------------------------------------------------------------ parameter types

def param_kind(value: Any) -> str | None:
    """The parameter type name of one value: bool, int, float, string (None for a missing value)."""
    value = _clean(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise RecordError(f"parameter value {value!r} of type {type(value).__name__}: "
                      "expected bool, int, float, str or None")


def kind_of_type(arrow_type: pa.DataType) -> str | None:
    """The parameter type name of an Arrow column type (None for the null type); RecordError otherwise."""
    if pa.types.is_null(arrow_type):
        return None
    for name, known in PARAM_TYPES.items():
        if arrow_type == known:
            return name
    raise RecordError(f"parameter column of Arrow type {arrow_type}: expected bool, int64, double or string")


def merge_kinds(key: str, kinds: Iterable[str | None]) -> str:
    """One column type for the values a parameter can take: ints and floats together are float; any other
    mix is a RecordError naming the key.  A parameter that is only ever null is a string column."""
    found = {k for k in kinds if k is not None}
    if found == {"int", "float"}:
        return "float"
    if len(found) > 1:
        raise RecordError(f"parameter {key}: values of types {sorted(found)} cannot share one column; "
                          "give every value of a parameter the same type")
    return found.pop() if found else "string"


@dataclass(frozen=True)
class StudyColumns:
    """What fixes one study's trials schema: its parameters with their types, its objective and mode."""
    study: str
    params: Mapping[str, str] = field(default_factory=dict)   # dotted key -> bool | int | float | string
    objective: str = "val_r_mean"                              # a val_/test_ metric column
    objective_mode: str = "max"                                # max | min

    def __post_init__(self) -> None:
        for key, kind in self.params.items():
            if not isinstance(key, str) or not key or key.startswith(".") or key.endswith("."):
                raise RecordError(f"study {self.study}: parameter key {key!r} is not a dotted config key")
            if kind not in PARAM_TYPES:
                raise RecordError(f"study {self.study}: parameter {key}: type {kind!r}, expected one of "
                                  f"{', '.join(PARAM_TYPES)}")
        if self.objective not in OBJECTIVE_COLUMNS:
            raise RecordError(f"study {self.study}: objective {self.objective!r}, expected one of "
                              f"{', '.join(OBJECTIVE_COLUMNS)}")
        if self.objective_mode not in MODES:
            raise RecordError(f"study {self.study}: objective_mode {self.objective_mode!r}, expected one of "
                              f"{', '.join(MODES)}")

    @classmethod
    def from_values(cls, study: str, values: Mapping[str, Iterable[Any]], objective: str = "val_r_mean",
                    objective_mode: str = "max") -> "StudyColumns":
        """Columns whose types come from every value each parameter can take."""
        params = {key: merge_kinds(key, (param_kind(v) for v in vals)) for key, vals in values.items()}
        return cls(study, dict(sorted(params.items())), objective, objective_mode)


def _metadata(table: str) -> dict[bytes, bytes]:
    return {VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: table.encode()}


def trial_schema(columns: StudyColumns | None = None) -> pa.Schema:
    """The trials schema of a study: the fixed fields, then one `param.<key>` column per parameter (sorted)."""
    fields = list(TRIAL_FIELDS)
    params = columns.params if columns is not None else {}
    for key in sorted(params):
        fields.append(pa.field(param_column(key), PARAM_TYPES[params[key]]))
    return pa.schema(fields, metadata=_metadata("trials"))


def epoch_schema() -> pa.Schema:
    """The epochs schema (long format: one row per split and metric)."""
    return pa.schema(list(EPOCH_FIELDS), metadata=_metadata("epochs"))


def importance_schema() -> pa.Schema:
    """The parameter importances of a search study: one row per parameter, or one row with the reason."""
    return pa.schema(list(IMPORTANCE_FIELDS), metadata=_metadata("importances"))


def major(version: str) -> str:
    return version.split(".", 1)[0]


def file_version(schema: pa.Schema) -> str:
    """The schema version a file's metadata names ('<none>' when absent)."""
    return (schema.metadata or {}).get(VERSION_KEY, b"").decode() or "<none>"


def check_version(schema: pa.Schema, where: str) -> str:
    """The file's version; SchemaVersionError naming `where` if no reader here knows its major version."""
    found = file_version(schema)
    if major(found) not in READABLE_MAJORS:
        raise SchemaVersionError(
            f"{where}: written with results schema version {found}, but this harma reads versions "
            f"{', '.join(m + '.x' for m in READABLE_MAJORS)} (writes {SCHEMA_VERSION}); rewrite it or use a "
            f"matching harma")
    return found


# ---------------------------------------------------------------------------------------------- records

def _to_timestamp(value: Any, key: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        value = value.to_pydatetime()
    if not isinstance(value, dt.datetime):
        raise RecordError(f"trial record {key}: {value!r} is not a datetime, ISO string or epoch seconds")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _clean(value: Any) -> Any:
    """numpy scalars -> Python; float NaN stays NaN (Arrow keeps it as a value, not null)."""
    if hasattr(value, "item") and hasattr(value, "dtype"):
        return value.item()
    return value


def _param_value(columns: StudyColumns, key: str, value: Any) -> Any:
    if key not in columns.params:
        raise RecordError(f"trial record params: {key!r} is not a parameter of study {columns.study}'s schema "
                          f"(its parameters: {', '.join(columns.params) or 'none'})")
    kind, found = columns.params[key], param_kind(value)
    if found is None or found == kind:
        return value
    if kind == "float" and found == "int":
        return float(value)
    raise RecordError(f"trial record params: {key}: {value!r} is a {found}, but study {columns.study}'s "
                      f"column {param_column(key)} holds {kind} values")


def normalize_trial(record: Mapping[str, Any], columns: StudyColumns) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a trial record against a study's columns; return (fixed column values, params)."""
    unknown = sorted(set(record) - set(RECORD_KEYS) - {"params"})
    if unknown:
        raise RecordError(f"trial record: unknown keys {unknown}; valid keys: {', '.join(RECORD_KEYS)}, params")
    missing = [k for k in REQUIRED_TRIAL_KEYS if record.get(k) in (None, "")]
    if missing:
        raise RecordError(f"trial record: missing required keys {missing}")
    if record["study"] != columns.study:
        raise RecordError(f"trial record study: {record['study']!r}, but the columns are study {columns.study!r}'s")
    if record["kind"] not in KINDS:
        raise RecordError(f"trial record kind: {record['kind']!r}, expected one of {KINDS}")
    if record["status"] not in STATUSES:
        raise RecordError(f"trial record status: {record['status']!r}, expected one of {STATUSES}")
    row = {k: _clean(record.get(k)) for k in RECORD_KEYS}
    row.update(schema_version=SCHEMA_VERSION, objective=columns.objective, objective_mode=columns.objective_mode)
    for key in ("started_at", "finished_at"):
        row[key] = _to_timestamp(row[key], key)
    if isinstance(row["package_versions"], Mapping):
        row["package_versions"] = json.dumps(dict(row["package_versions"]), sort_keys=True)
    params = {str(k): _param_value(columns, str(k), _clean(v)) for k, v in dict(record.get("params") or {}).items()}
    return row, params


def trial_table(record: Mapping[str, Any], columns: StudyColumns) -> pa.Table:
    """One-row Arrow table for a trial record under its study's schema (unset parameters are null);
    RecordError naming the trial, column and value for a value no trial can have (see values.py)."""
    row, params = normalize_trial(record, columns)
    data = {k: [row[k]] for k in TRIAL_KEYS}
    data.update({param_column(k): [params.get(k)] for k in columns.params})
    try:
        table = pa.Table.from_pydict(data, schema=trial_schema(columns))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise RecordError(f"trial record {row['trial_id']!r}: {exc}") from None
    return check_record(table, "trials", f"trial record {row['trial_id']!r}")


@dataclass(frozen=True)
class Importances:
    """Parameter importances of a study's objective ({dotted key: share, summing to 1}) and how they were
    made, or the reason there are none (`importances` empty)."""
    study: str
    importances: Mapping[str, float]
    evaluator: str
    n_trials: int
    reason: str | None = None
    computed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def __post_init__(self) -> None:
        if bool(self.importances) == (self.reason is not None):
            raise RecordError(f"importances of study {self.study}: give either values or the reason there "
                              "are none")


def importance_table(imp: Importances) -> pa.Table:
    rows = [(k, float(v), None) for k, v in imp.importances.items()] or [(None, None, imp.reason)]
    n = len(rows)
    return pa.Table.from_pydict({
        "study": [imp.study] * n, "param": [r[0] for r in rows], "importance": [r[1] for r in rows],
        "evaluator": [imp.evaluator] * n, "n_trials": [int(imp.n_trials)] * n, "reason": [r[2] for r in rows],
        "computed_at": [imp.computed_at] * n, "schema_version": [SCHEMA_VERSION] * n}, schema=importance_schema())


def epoch_table(study: str, trial_id: str, epoch: int,
                metrics: Mapping[str, Mapping[str, float]], seconds: float | None) -> pa.Table:
    """Long Arrow table for one epoch report: one row per (split, metric), sorted; RecordError for a value
    no epoch can have (see values.py)."""
    rows: list[tuple[str, str, float | None]] = []
    for split in sorted(metrics):
        if split not in SPLITS:
            raise RecordError(f"epoch report {trial_id} e{epoch}: split {split!r}, expected one of {SPLITS}")
        for name in sorted(metrics[split]):
            value = _clean(metrics[split][name])
            rows.append((split, str(name), None if value is None else float(value)))
    n = len(rows)
    cols = {
        "study": [study] * n, "trial_id": [trial_id] * n, "epoch": [int(epoch)] * n,
        "split": [r[0] for r in rows], "metric": [r[1] for r in rows], "value": [r[2] for r in rows],
        "seconds": [None if seconds is None else float(seconds)] * n,
        "schema_version": [SCHEMA_VERSION] * n,
    }
    return check_record(pa.Table.from_pydict(cols, schema=epoch_schema()), "epochs",
                        f"epoch report {trial_id} e{epoch}")


def record_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A trials row read back (a dict or pandas row) as a record `trial_table` writes again: its set fixed
    values and its set parameters."""
    record = {k: plain(row[k]) for k in RECORD_KEYS if k in row.keys() and not is_missing(row[k])}
    record["params"] = row_overrides(row)
    return record
