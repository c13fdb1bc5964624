"""Upgrade results files of schema 1.x to the current schema, on read (and on `harma study resume`, which
rewrites a study's old files so that every file of the study has the same columns again).

Schema 1.0 had no `schema_version`, `objective` or `objective_mode` columns, one `peak_memory_bytes` and no
`resolved_config`, `git_dirty`, `gpu_name`, `gpu_count` or `cuda_version`.  Upgraded rows keep
`schema_version` "1.0" (the version they were written under); their objective is `val_r_mean` / max, the
only one a 1.x trainer selected its best epoch on; `peak_memory_bytes` was allocated GPU memory for a trial
that held GPUs (`gpu_seconds` > 0) and process RSS otherwise, so it moves to `peak_gpu_bytes` or
`peak_rss_bytes` by that rule; the new provenance columns are null.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from harma.results.schema import (
    EPOCH_FIELDS,
    TRIAL_FIELDS,
    RecordError,
    check_version,
    major,
)
from harma.results.trials import is_param_column

V1_OBJECTIVE, V1_MODE = "val_r_mean", "max"


def _constant(table: pa.Table, value: str) -> pa.Array:
    return pa.array([value] * table.num_rows, pa.string())


def _upgrade_trials_v1(table: pa.Table, version: str) -> pa.Table:
    names = set(table.column_names)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "schema_version": _constant(table, version), "objective": _constant(table, V1_OBJECTIVE),
        "objective_mode": _constant(table, V1_MODE)}
    if "peak_memory_bytes" in names:
        peak = table["peak_memory_bytes"]
        on_gpu = pc.fill_null(pc.greater(table["gpu_seconds"].cast(pa.float64()), 0.0), False)
        columns["peak_gpu_bytes"] = pc.if_else(on_gpu, peak, pa.scalar(None, pa.int64()))
        columns["peak_rss_bytes"] = pc.if_else(on_gpu, pa.scalar(None, pa.int64()), peak)
    fixed = []
    for f in TRIAL_FIELDS:
        if f.name in columns:
            fixed.append(columns[f.name])
        elif f.name in names:
            fixed.append(table[f.name].cast(f.type))
        else:
            fixed.append(pa.nulls(table.num_rows, f.type))
    params = [c for c in table.column_names if is_param_column(c)]
    fields = [f.with_nullable(True) if f.name in columns else f for f in TRIAL_FIELDS]
    schema = pa.schema(fields + [table.schema.field(c) for c in params])
    return pa.Table.from_arrays(fixed + [table[c] for c in params], schema=schema)


def _upgrade_epochs_v1(table: pa.Table, version: str) -> pa.Table:
    arrays = [_constant(table, version) if f.name == "schema_version" else table[f.name].cast(f.type)
              for f in EPOCH_FIELDS]
    return pa.Table.from_arrays(arrays, schema=pa.schema([f.with_nullable(True) for f in EPOCH_FIELDS]))


def upgrade(table: pa.Table, kind: str, where: str) -> pa.Table:
    """`table` (a trials or epochs file read as is) in the current column layout; raises SchemaVersionError
    naming `where` for a version no reader here knows."""
    version = check_version(table.schema, where)
    if major(version) != "1":
        return table
    try:
        return _upgrade_trials_v1(table, version) if kind == "trials" else _upgrade_epochs_v1(table, version)
    except KeyError as exc:
        raise RecordError(f"{where}: schema {version} {kind} file is missing a column ({exc.args[0]})") from None


def needs_rewrite(table: pa.Table, target: pa.Schema) -> bool:
    """Whether a file's table differs from the study's target schema (other columns, types or version)."""
    return not table.schema.remove_metadata().equals(target.remove_metadata()) or \
        table.schema.metadata != target.metadata
