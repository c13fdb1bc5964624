"""harma.results: the Parquet results of studies (one explicit, versioned Arrow schema per study; see schema.py).

`ResultsStore(root)` writes one file per trial (under the study's `StudyColumns`) and one per reported epoch
under a local path or object-store URI, partitioned by study, and reads them back as pandas frames;
`harma.results.trials` owns what a trials row means.  Reports read only these tables.
"""
from harma.metrics import METRIC_KEYS
from harma.results.schema import (
    SCHEMA_VERSION,
    RecordError,
    SchemaVersionError,
    StudyColumns,
    epoch_schema,
    trial_schema,
)
from harma.results.store import ResultsStore
from harma.results.trials import STATUSES, param_columns
from harma.terms import KINDS

__all__ = [
    "ResultsStore", "StudyColumns", "SCHEMA_VERSION", "SchemaVersionError", "RecordError", "METRIC_KEYS",
    "KINDS", "STATUSES", "trial_schema", "epoch_schema", "param_columns",
]
