"""A seeded deterministic search, run twice on a local Ray with 2 trials at once, gives the same trials (their
parameters), statuses, stop epochs and best trial and value, whatever order results arrived in.  Trials differ
in batch size, so their epochs take different times and results arrive out of trial order."""
from __future__ import annotations

import pytest

from harma_subprocess import read_trials, run_harma, tiny_study

BODY = """
num_samples: 7
max_concurrent: 2
seeds: [3407]
scheduler: {type: asha, max_epochs: 3, grace_period: 1, reduction_factor: 2, deterministic: true}
search:
  sampler: {seed: 11, n_startup_trials: 3}
  space:
    optim.lr: {type: float, low: 1.0e-4, high: 3.0e-2, log: true}
    adapter.gate_init: {type: float, low: -1.0, high: 1.0}
    train.batch_size: {type: categorical, choices: [8, 32]}
"""
KEEP = ["trial_id", "status", "stop_epoch", "best_epoch", "val_r_mean", "param.optim.lr", "param.adapter.gate_init",
        "param.train.batch_size"]


def outcome(scratch, name: str):
    proc = run_harma(["study", "run", f"studies/{name}.yaml"], scratch, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = read_trials(scratch, name).sort_values("trial_id").reset_index(drop=True)
    best = trials.sort_values(["val_r_mean", "trial_id"], ascending=[False, True]).iloc[0]
    return trials[KEEP], (best["trial_id"], best["val_r_mean"])


@pytest.mark.ray
@pytest.mark.slow
def test_a_deterministic_search_repeats(scratch):
    for name in ("det1", "det2"):
        (scratch / "studies" / f"{name}.yaml").write_text(tiny_study(name, "search", 3, BODY))
    first, best1 = outcome(scratch, "det1")
    second, best2 = outcome(scratch, "det2")
    assert len(first) == 7 and set(first["status"]) <= {"COMPLETE", "PRUNED"} and "PRUNED" in set(first["status"])
    assert first.to_dict("records") == second.to_dict("records")
    assert best1 == best2
