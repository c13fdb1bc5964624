"""The Ray and Optuna layer: it runs a study's trials (runner, trial, relay), searches (searcher, space),
schedules (the Tune adapter of harma.schedulers), records as results arrive (callbacks), and holds the study's
lock and cluster checks.  Every Ray and Optuna call of harma lives here; the study model is `harma.study`."""
