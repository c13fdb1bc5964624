"""A tiny asynchronous Hyperband search end to end on a local 2-CPU Ray: 6 trials in 2 brackets run to the end,
some are pruned, each only at a rung of its own bracket, the snapshot keeps the scheduler, and `harma study
verify` passes.  Trials run one at a time with seeded random parameters, so the order in which they reach a
rung, and hence who is pruned, is the same on every run (with these settings trial-0005, in bracket 1, stops
at epoch 2)."""
from __future__ import annotations

import pytest

from harma_subprocess import assert_verified, read_trials, run_harma, tiny_study

from harma.schedulers.hyperband import HyperbandSpec, bracket_of
from harma.study.snapshot import read_snapshot

pytestmark = [pytest.mark.ray, pytest.mark.slow]

HYPERBAND_BODY = """
num_samples: 6
max_concurrent: 1
seeds: [3407]
scheduler: {type: hyperband, max_epochs: 3, grace_period: 1, reduction_factor: 2, brackets: 2}
search:
  sampler: {seed: 1, n_startup_trials: 6}
  space:
    optim.lr: {type: float, low: 1.0e-4, high: 2.0e-2, log: true}
    adapter.gate_init: {type: float, low: -1.0, high: 1.0}
"""
SPEC = HyperbandSpec(max_epochs=3, grace_period=1, reduction_factor=2.0, brackets=2)   # rungs [1, 2] and [2]


def test_tiny_hyperband_search_runs_to_the_end_and_verifies(scratch):
    (scratch / "studies" / "hb.yaml").write_text(tiny_study("hb", "search", 3, HYPERBAND_BODY))
    proc = run_harma(["study", "run", "studies/hb.yaml"], scratch)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    trials = read_trials(scratch, "hb")
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"COMPLETE", "PRUNED"} and (trials["status"] == "PRUNED").any()
    rungs = SPEC.bracket_rungs()
    for row in trials.to_dict("records"):
        if row["status"] == "PRUNED":
            assert row["stop_epoch"] in rungs[bracket_of(row["trial_id"], SPEC.brackets)], row
        else:
            assert row["stop_epoch"] == SPEC.max_epochs, row
    assert read_snapshot(str(scratch / "results"), "hb").scheduler == SPEC
    assert_verified(scratch, "hb")
