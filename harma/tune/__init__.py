"""Ray Tune + Optuna study platform: study files (`harma.tune.study`), the Optuna search space
(`harma.tune.space`) and the Ray layer that runs trials.  This package file imports nothing, so that
`import harma.tune.study` works without Ray."""
