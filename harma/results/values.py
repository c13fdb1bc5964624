"""The values a results table may hold, one rule for the writer and for the readers: a recall (R@k or mR, in
percent: the `val_*`/`test_*` columns of a trials row and an epoch's val and test metrics, `r_mean_tie_gap`
included) is finite and in [0, 100]; seconds (a trial's wall and GPU time, an epoch's time) are finite and not
negative; an epoch number, a parameter count or a peak memory is not negative; any other epoch value (train
losses, the learning rate) is finite.  Null is always allowed: it means unset.  `first_bad` finds the first
value of a trials or epochs table that breaks its rule with a few vectorised pyarrow.compute calls per checked
column, never a Python loop over rows: `check_record` turns it into the writer's RecordError
(schema.trial_table / epoch_table), `check_files` into the readers' ResultsFileError naming the file, after
checking the concatenation of a study's files in one pass.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from harma.terms import EVAL_SPLITS
from harma.errors import RecordError, ResultsFileError
from harma.metrics import METRIC_KEYS, REPORTED_KEYS

RECALL_SPLITS = EVAL_SPLITS
RECALL_COLUMNS = tuple(f"{split}_{m}" for split in RECALL_SPLITS for m in METRIC_KEYS)


@dataclass(frozen=True)
class Rule:
    """What a column may hold besides null: its Arrow type, whether it must be finite, and its bounds."""
    expected: str
    type: pa.DataType
    finite: bool = True
    low: float | None = None
    high: float | None = None


RECALL = Rule("a recall in [0, 100]", pa.float64(), low=0.0, high=100.0)
SECONDS = Rule("finite seconds >= 0", pa.float64(), low=0.0)
COUNT = Rule("a whole number >= 0", pa.int64(), finite=False, low=0)
FINITE = Rule("a finite number", pa.float64())

TRIAL_RULES: dict[str, Rule] = {
    "stop_epoch": COUNT, "best_epoch": COUNT, **{c: RECALL for c in RECALL_COLUMNS},
    "trainable_params": COUNT, "total_params": COUNT, "wall_seconds": SECONDS, "gpu_seconds": SECONDS,
    "peak_rss_bytes": COUNT, "peak_gpu_bytes": COUNT,
}
EPOCH_RULES: dict[str, Rule] = {"epoch": COUNT, "value": FINITE, "seconds": SECONDS}  # value: RECALL on val/test
LABELS: dict[str, pa.DataType] = {"split": pa.string(), "metric": pa.string()}        # say which value it is


@dataclass(frozen=True)
class BadValue:
    """The first impossible value of a table: its row, column, the value, which metric it is and its rule."""
    row: int
    column: str
    value: Any
    rule: Rule
    detail: str = ""

    def text(self) -> str:
        """`column val_r_mean holds inf; expected a recall in [0, 100] or null`."""
        return f"column {self.column} holds {self.value!r}{self.detail}; expected {self.rule.expected} or null"


def _ok(values: pa.ChunkedArray, rule: Rule) -> pa.ChunkedArray:
    """True where a value keeps its rule (null included)."""
    checks = [pc.is_finite(values)] if rule.finite else []
    if rule.low is not None:
        checks.append(pc.greater_equal(values, rule.low))
    if rule.high is not None:
        checks.append(pc.less_equal(values, rule.high))
    ok = checks[0]
    for more in checks[1:]:
        ok = pc.and_(ok, more)
    return pc.fill_null(ok, True)


def _first_false(ok: pa.ChunkedArray) -> int | None:
    if pc.all(ok).as_py() is not False:
        return None
    return pc.index(ok, False).as_py()


def _epoch_value(table: pa.Table) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """(ok mask of the `value` column, whether each row is a recall) of an epochs table."""
    recall = pc.and_(pc.is_in(table["split"], pa.array(RECALL_SPLITS)),
                     pc.is_in(table["metric"], pa.array(REPORTED_KEYS)))
    values = table["value"]
    return pc.if_else(recall, _ok(values, RECALL), _ok(values, FINITE)), recall


def first_bad(table: pa.Table, kind: str) -> BadValue | None:
    """The first value of a `trials` or `epochs` table that breaks its rule (lowest row, then column order),
    or None; columns the table lacks are not checked."""
    rules = TRIAL_RULES if kind == "trials" else EPOCH_RULES
    found: BadValue | None = None
    for column, rule in rules.items():
        if column not in table.column_names:
            continue
        recall = None
        if kind == "epochs" and column == "value":
            ok, recall = _epoch_value(table)
        else:
            ok = _ok(table[column], rule)
        row = _first_false(ok)
        if row is None or (found is not None and found.row <= row):
            continue
        detail = ""
        if recall is not None:
            rule = RECALL if recall[row].as_py() else FINITE
            detail = f" for {table['split'][row].as_py()} {table['metric'][row].as_py()}"
        found = BadValue(row, column, table[column][row].as_py(), rule, detail)
    return found


def check_record(table: pa.Table, kind: str, who: str) -> pa.Table:
    """`table` (a record the writer built) when every value keeps its rule; RecordError naming `who` (the
    trial, or the trial and epoch), the column and the value otherwise."""
    bad = first_bad(table, kind)
    if bad is not None:
        raise RecordError(f"{who}: {bad.text()}")
    return table


def _wanted(kind: str) -> pa.Schema:
    """The columns `first_bad` reads from a `trials` or `epochs` table, with their types."""
    rules = TRIAL_RULES if kind == "trials" else EPOCH_RULES
    return pa.schema([(c, r.type) for c, r in rules.items()] + (list(LABELS.items()) if kind == "epochs" else []))


CHECKED = {kind: _wanted(kind) for kind in ("trials", "epochs")}


def _column(table: pa.Table, target: pa.Field, path: str) -> pa.ChunkedArray:
    """One checked column of a file in its expected type (null where the file lacks it)."""
    if target.name not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, target.type)])
    values = table[target.name]
    try:
        return values.cast(target.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ResultsFileError(f"results file {path}: column {target.name} is of type {values.type}; expected "
                               f"{target.type}") from None


def _checked_columns(table: pa.Table, kind: str, path: str) -> pa.Table:
    """The columns of one file that `first_bad` reads, in their expected types."""
    target = CHECKED[kind]
    if set(target.names) <= set(table.column_names):
        chosen = table.select(target.names)
        if chosen.schema.types == target.types:          # every file harma wrote: no copy, no cast
            return chosen
    return pa.Table.from_arrays([_column(table, f, path) for f in target], schema=target)


def check_files(tables: Sequence[pa.Table], paths: Sequence[str], kind: str) -> None:
    """Check the `trials` or `epochs` tables read from `paths` in one pass over their concatenation;
    ResultsFileError naming the first file (in `paths` order) holding an impossible value, its column and
    the value."""
    if not tables:
        return
    parts = [_checked_columns(t, kind, p) for t, p in zip(tables, paths)]
    bad = first_bad(pa.concat_tables(parts, promote_options="permissive"), kind)
    if bad is None:
        return
    ends = np.cumsum([t.num_rows for t in parts])
    path = paths[int(np.searchsorted(ends, bad.row, side="right"))]
    raise ResultsFileError(f"results file {path}: {bad.text()}")
