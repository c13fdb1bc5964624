"""Guards `harma study run|resume` applies before any Ray starts: a study another live driver holds is refused
naming it, and a new study never silently resumes checkpoints an earlier run of its name left behind."""
from __future__ import annotations

import json
from dataclasses import asdict

from harma.cli import main
from harma.tune.lock import this_driver

STUDY = """
name: guarded
kind: ablation
base: {config: synthetic-tiny}
resources: {gpus_per_trial: 0, cpus_per_worker: 1, workers_per_trial: 1}
seeds: [1]
scheduler: {type: none}
storage: results
arms: {a: {}}
"""


def test_a_study_held_by_a_live_driver_is_refused(scratch, monkeypatch, one_line):
    monkeypatch.chdir(scratch)
    (scratch / "studies" / "guarded.yaml").write_text(STUDY)
    holder = this_driver()                      # this very process: alive, so the lock is not stale
    (scratch / "results" / "locks").mkdir(parents=True)
    (scratch / "results" / "locks" / "guarded.lock").write_text(json.dumps(asdict(holder)))
    for argv in (["study", "run", "studies/guarded.yaml"], ["study", "resume", "guarded"]):
        assert main(argv) == 2
        line = one_line()
        assert f"being run by another driver, pid {holder.pid} on host {holder.host}" in line
    assert not (scratch / "results" / "trials").exists()


def test_a_new_study_refuses_checkpoints_an_earlier_run_left(scratch, monkeypatch, one_line):
    monkeypatch.chdir(scratch)
    (scratch / "studies" / "guarded.yaml").write_text(STUDY)
    stale = scratch / "results" / "runs" / "guarded" / "a-s1"
    stale.mkdir(parents=True)
    (stale / "last.pt").write_bytes(b"old")
    assert main(["study", "run", "studies/guarded.yaml"]) == 2
    line = one_line()
    assert str(scratch / "results" / "runs" / "guarded") in line and "delete that folder" in line
    assert not (scratch / "results" / "locks" / "guarded.lock").exists()      # the lock was released


def test_a_new_study_under_a_name_with_results_is_refused(scratch, monkeypatch, one_line):
    from harma.results.store import ResultsStore
    from harma.tune.runner import columns_for
    from harma.study.parse import load_study

    monkeypatch.chdir(scratch)
    (scratch / "studies" / "guarded.yaml").write_text(STUDY)
    study = load_study("studies/guarded.yaml")
    store = ResultsStore(study.storage_path())
    store.write_trial({"study": "guarded", "trial_id": "a-s1", "kind": "ablation", "arm": "a", "seed": 1,
                       "status": "COMPLETE", "params": {}}, columns_for(study, store))
    before = sorted(p.read_bytes() for p in (scratch / "results" / "trials").rglob("*.parquet"))
    assert main(["study", "run", "studies/guarded.yaml"]) == 2
    line = one_line()
    assert "already has results" in line and "harma study resume guarded" in line
    assert sorted(p.read_bytes() for p in (scratch / "results" / "trials").rglob("*.parquet")) == before
    assert not (scratch / "results" / "snapshots").exists()         # a refusal writes nothing: no snapshot,
    assert not (scratch / "results" / "runs").exists()              # no trial or Ray folders
    assert not (scratch / "results" / "ray").exists()


SEARCH = """
name: corrupt
kind: search
base: {config: synthetic-tiny}
resources: {gpus_per_trial: 0, cpus_per_worker: 1, workers_per_trial: 1}
num_samples: 2
seeds: [1]
storage: results
search:
  space:
    optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
"""


def test_a_corrupt_optuna_file_is_one_line_before_ray_for_status_and_resume(scratch, monkeypatch, one_line):
    import os

    import ray

    from harma.tune import runner

    monkeypatch.chdir(scratch)
    (scratch / "studies" / "corrupt.yaml").write_text(SEARCH)
    db = scratch / "results" / "optuna" / "corrupt.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(os.urandom(4096))
    monkeypatch.setattr(runner, "run_study", lambda *a, **k: (_ for _ in ()).throw(AssertionError("Ray started")))
    monkeypatch.setattr(ray, "init", lambda *a, **k: (_ for _ in ()).throw(AssertionError("Ray started")))
    for argv in (["study", "resume", "studies/corrupt.yaml"], ["study", "run", "studies/corrupt.yaml"]):
        assert main(argv) == 2
        line = one_line()
        assert f"optuna_storage: sqlite:///{db} cannot be opened as an Optuna storage" in line, line
        assert "file is not a database" in line
    from harma.results.store import ResultsStore
    from harma.results.trials import MIN_IMPORTANCE_TRIALS
    from harma.tune.runner import columns_for
    from harma.study.parse import load_study

    study = load_study("studies/corrupt.yaml")
    store = ResultsStore(study.storage_path())
    for number in range(MIN_IMPORTANCE_TRIALS):             # enough trials for status to read Optuna
        store.write_trial({"study": "corrupt", "trial_id": f"trial-{number:04d}", "kind": "search", "seed": 1,
                           "status": "COMPLETE", "val_r_mean": 10.0, "params": {}}, columns_for(study, store))
    assert main(["study", "status", "studies/corrupt.yaml"]) == 2
    assert "cannot be opened as an Optuna storage" in one_line()
