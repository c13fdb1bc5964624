"""The one explicit, versioned Arrow schema of the two results tables, `trials` and `epochs`.

A trial row holds one Tune trial's outcome (status, best validation metrics, test metrics at the best
validation epoch, cost, provenance) plus one typed `param.<dotted key>` column per searched or overridden
config key; because those keys differ between studies, `trial_schema(params)` builds the schema from the
fixed part below and the types of the record's parameter values.  An epoch row is one metric of one split
at one epoch (long, tidy format).  Both schemas carry `harma.schema_version` in their metadata;
`check_version` refuses a file written under another major version.  The `study` column is
dictionary-encoded so it merges with the hive partition key (`study=<name>`) when a whole tree is read
with plain `pandas.read_parquet`.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from harma.metrics import METRIC_KEYS

SCHEMA_VERSION = "1.0"
VERSION_KEY = b"harma.schema_version"
TABLE_KEY = b"harma.table"

KINDS = ("search", "ablation", "replicate")
STATUSES = ("COMPLETE", "PRUNED", "FAILED", "RUNNING")
SPLITS = ("val", "test", "train")
PARAM_PREFIX = "param."

STUDY_TYPE = pa.dictionary(pa.int32(), pa.string())
TIMESTAMP = pa.timestamp("us", tz="UTC")


class SchemaVersionError(RuntimeError):
    """A results file was written under a different major schema version."""


class RecordError(ValueError):
    """A trial record or epoch report does not fit the schema."""


def _fixed_trial_fields() -> list[pa.Field]:
    fields = [
        pa.field("study", STUDY_TYPE, nullable=False),
        pa.field("trial_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("arm", pa.string()),
        pa.field("seed", pa.int64()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("stop_epoch", pa.int64()),
        pa.field("best_epoch", pa.int64()),
    ]
    fields += [pa.field(f"{split}_{m}", pa.float64()) for split in ("val", "test") for m in METRIC_KEYS]
    fields += [
        pa.field("trainable_params", pa.int64()),
        pa.field("total_params", pa.int64()),
        pa.field("wall_seconds", pa.float64()),
        pa.field("gpu_seconds", pa.float64()),
        pa.field("peak_memory_bytes", pa.int64()),
        pa.field("error", pa.string()),
        pa.field("git_commit", pa.string()),
        pa.field("package_versions", pa.string()),
        pa.field("host", pa.string()),
        pa.field("node_id", pa.string()),
        pa.field("started_at", TIMESTAMP),
        pa.field("finished_at", TIMESTAMP),
    ]
    return fields


TRIAL_FIELDS: tuple[pa.Field, ...] = tuple(_fixed_trial_fields())
TRIAL_KEYS: tuple[str, ...] = tuple(f.name for f in TRIAL_FIELDS)
REQUIRED_TRIAL_KEYS = ("study", "trial_id", "kind", "status")

EPOCH_FIELDS: tuple[pa.Field, ...] = (
    pa.field("study", STUDY_TYPE, nullable=False),
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("epoch", pa.int64(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("metric", pa.string(), nullable=False),
    pa.field("value", pa.float64()),
    pa.field("seconds", pa.float64()),
)


def _metadata(table: str) -> dict[bytes, bytes]:
    return {VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: table.encode()}


def param_type(value: Any) -> pa.DataType:
    """Arrow type of one parameter value: bool, int64, float64, string (None -> null, merged later)."""
    if value is None:
        return pa.null()
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    if isinstance(value, str):
        return pa.string()
    if hasattr(value, "dtype") and hasattr(value, "item"):  # numpy scalar
        return param_type(value.item())
    raise RecordError(f"parameter value {value!r} of type {type(value).__name__}: "
                      "expected bool, int, float, str or None")


def trial_schema(params: Mapping[str, Any] | None = None) -> pa.Schema:
    """The trials schema: the fixed fields, then one `param.<key>` column per parameter (sorted)."""
    fields = list(TRIAL_FIELDS)
    for key in sorted(params or {}):
        fields.append(pa.field(PARAM_PREFIX + key, param_type(params[key])))
    return pa.schema(fields, metadata=_metadata("trials"))


def epoch_schema() -> pa.Schema:
    """The epochs schema (long format: one row per split and metric)."""
    return pa.schema(list(EPOCH_FIELDS), metadata=_metadata("epochs"))


def major(version: str) -> str:
    return version.split(".", 1)[0]


def check_version(schema: pa.Schema, where: str) -> None:
    """Raise SchemaVersionError naming `where` if the schema's major version is not ours."""
    meta = schema.metadata or {}
    found = meta.get(VERSION_KEY, b"").decode() or "<none>"
    if major(found) != major(SCHEMA_VERSION):
        raise SchemaVersionError(
            f"{where}: written with results schema version {found}, but this harma reads version "
            f"{SCHEMA_VERSION}; major versions differ, so the file cannot be read (rewrite it or use a "
            f"matching harma)")


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


def normalize_trial(record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a trial record; return (fixed column values, params). Missing optional keys become null."""
    unknown = sorted(set(record) - set(TRIAL_KEYS) - {"params"})
    if unknown:
        raise RecordError(f"trial record: unknown keys {unknown}; valid keys: {', '.join(TRIAL_KEYS)}, params")
    missing = [k for k in REQUIRED_TRIAL_KEYS if record.get(k) in (None, "")]
    if missing:
        raise RecordError(f"trial record: missing required keys {missing}")
    if record["kind"] not in KINDS:
        raise RecordError(f"trial record kind: {record['kind']!r}, expected one of {KINDS}")
    if record["status"] not in STATUSES:
        raise RecordError(f"trial record status: {record['status']!r}, expected one of {STATUSES}")
    row = {k: _clean(record.get(k)) for k in TRIAL_KEYS}
    for key in ("started_at", "finished_at"):
        row[key] = _to_timestamp(row[key], key)
    if isinstance(row["package_versions"], Mapping):
        row["package_versions"] = json.dumps(dict(row["package_versions"]), sort_keys=True)
    params = {str(k): _clean(v) for k, v in dict(record.get("params") or {}).items()}
    for key, value in params.items():
        param_type(value)  # raises on unsupported types, naming the value
        if not key or key.startswith(".") or key.endswith("."):
            raise RecordError(f"trial record params: bad key {key!r}")
    return row, params


def trial_table(record: Mapping[str, Any]) -> pa.Table:
    """One-row Arrow table for a trial record, with the schema built from its params."""
    row, params = normalize_trial(record)
    schema = trial_schema(params)
    columns = {k: [row[k]] for k in TRIAL_KEYS}
    columns.update({PARAM_PREFIX + k: [v] for k, v in params.items()})
    try:
        return pa.Table.from_pydict(columns, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise RecordError(f"trial record {row['trial_id']!r}: {exc}") from None


def epoch_table(study: str, trial_id: str, epoch: int,
                metrics: Mapping[str, Mapping[str, float]], seconds: float | None) -> pa.Table:
    """Long Arrow table for one epoch report: one row per (split, metric), sorted."""
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
    }
    return pa.Table.from_pydict(cols, schema=epoch_schema())
