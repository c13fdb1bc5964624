"""Early-stopping schedulers of a study, with no Ray and no Optuna: a floor below `harma.study` (which parses a
study file's `scheduler:` through `registry`) and `harma.tune` (whose one Tune adapter asks a scheduler's
`Policy` what to do with each epoch result).  Each scheduler is one module (`none`, `asha`, `hyperband`) giving
a frozen spec, `parse`, `to_data` and `policy`; `registry` names them, and `base` holds what they share."""
