"""The words every layer of harma shares, each defined once: the kinds of study, the two objective modes, the
evaluation splits an objective is measured on, all data splits, and the config key of a trial's seed.  Imports
nothing, so the study, results, scheduler and data layers can all use it."""
from __future__ import annotations

KINDS = ("search", "ablation", "replicate")       # what a study file's `kind` may be
MODES = ("max", "min")                            # an objective is maximised or minimised
EVAL_SPLITS = ("val", "test")                     # splits a model is evaluated on (an objective's `split`)
DATA_SPLITS = ("train", "val", "test")            # every split of a data set
SEED_KEY = "train.seed"                           # the dotted config key of a trial's seed
