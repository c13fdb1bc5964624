"""harma.results: the Parquet results of studies (one explicit, versioned Arrow schema per study; see schema.py).

This package file imports nothing, so importing a light module of it (`harma.results.root`, the one owner of
the default results root) costs no pyarrow or pandas: import the submodule you use, e.g.
`from harma.results.store import ResultsStore` (writes and reads the tables under a local path or object-store
URI, partitioned by study, and `dataset()` reads every study of a root whole), `harma.results.schema` (the
schema and `StudyColumns`) and `harma.results.trials` (what a trials row means).  Reports read only these
tables.
"""

