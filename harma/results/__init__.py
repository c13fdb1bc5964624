"""harma.results: the Parquet results of studies (one explicit, versioned Arrow schema; see schema.py).

`ResultsStore(root)` writes one file per trial and one per reported epoch under a local path or object-store
URI, partitioned by study, and reads them back as pandas frames.  Reports read only these tables.
"""
from harma.results.schema import (
    KINDS,
    METRIC_KEYS,
    SCHEMA_VERSION,
    STATUSES,
    RecordError,
    SchemaVersionError,
    epoch_schema,
    trial_schema,
)
from harma.results.store import ResultsStore, param_columns

__all__ = [
    "ResultsStore", "SCHEMA_VERSION", "SchemaVersionError", "RecordError", "METRIC_KEYS", "KINDS", "STATUSES",
    "trial_schema", "epoch_schema", "param_columns",
]
