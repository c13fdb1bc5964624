"""Which trials a study plans, without Ray: every arm × seed for an ablation; the source search's best COMPLETE
trials × seeds for a replicate study, with their exact parameters."""
from __future__ import annotations

import dataclasses

from harma.results.store import ResultsStore

from harma.results.schema import StudyColumns
from harma.tune.runner import _fixed_trials
from harma.study.parse import load_study


def test_ablation_plans_every_arm_for_every_seed(tmp_path):
    study = dataclasses.replace(load_study("studies/ablation-smoke.yaml"), storage=str(tmp_path))
    planned = _fixed_trials(study, ResultsStore(tmp_path))
    assert [t.trial_id for t in planned] == [f"{arm}-s{seed}" for seed in study.seeds for arm in study.arms]
    assert all(t.overrides["train.seed"] == t.seed for t in planned)


def test_replicate_takes_the_best_complete_trials_with_their_parameters(tmp_path):
    store = ResultsStore(tmp_path)
    rows = [("trial-0000", "COMPLETE", 30.0, 16), ("trial-0001", "PRUNED", 99.0, 8),
            ("trial-0002", "COMPLETE", 45.0, 32), ("trial-0003", "COMPLETE", 40.0, 8),
            ("trial-0004", "FAILED", None, 16)]
    for tid, status, value, bottleneck in rows:
        store.write_trial({"study": "smoke", "trial_id": tid, "kind": "search", "status": status,
                           "val_r_mean": value, "params": {"adapter.bottleneck": bottleneck, "train.seed": 3407}},
                          StudyColumns("smoke", {"adapter.bottleneck": "int", "train.seed": "int"}))
    study = load_study("studies/replicate-smoke.yaml")
    study = dataclasses.replace(study, storage=str(tmp_path))
    planned = _fixed_trials(study, store)
    top = [t for t in planned if t.seed == study.seeds[0]]
    assert [t.arm for t in top] == ["trial-0002", "trial-0003"][: study.replicate.top_k]
    assert top[0].overrides == {"adapter.bottleneck": 32, "train.seed": study.seeds[0]}
    assert len(planned) == study.replicate.top_k * len(study.seeds)
