"""The study layer: a study file read and checked into a frozen `Study` (model, parse, space_check), the
results columns it fixes (columns), the snapshot it saves to resume by name (snapshot) and the trials of
another study it starts from (warm_start).  It imports neither Ray nor Optuna, so the report, the CLI and
the Ray layer all read studies through it."""
