"""Studies end to end on a local 2-CPU Ray: the smoke search (ASHA prunes, Optuna agrees), a DDP trial through
TorchTrainer beside a NaN trial, and a driver killed with SIGKILL then resumed (every trial exactly once)."""
from __future__ import annotations

import os
import shutil
import signal
import time

import optuna
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from harma_subprocess import (REPO, SEARCH_BODY, assert_verified, read_trials, run_harma, start_harma, tiny_study,
                              verify)

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_smoke_study_end_to_end_and_its_report(scratch):
    shutil.copy(REPO / "studies" / "smoke.yaml", scratch / "studies" / "smoke.yaml")
    proc = run_harma(["study", "run", "studies/smoke.yaml"], scratch)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    trials = read_trials(scratch)
    assert len(trials) == 10 and trials["trial_id"].is_unique
    assert set(trials["status"]) == {"COMPLETE", "PRUNED"}
    pruned = trials[trials["status"] == "PRUNED"]
    assert (pruned["stop_epoch"] < 4).all()
    assert (trials.loc[trials["status"] == "COMPLETE", "stop_epoch"] == 4).all()
    optuna_trials = optuna.load_study(study_name="smoke", storage=f"sqlite:///{scratch}/results/optuna/smoke.db"
                                      ).get_trials()
    states = {f"trial-{t.number:04d}": t.state.name for t in optuna_trials}
    assert {tid: states[tid] for tid in trials["trial_id"]} == dict(zip(trials["trial_id"], trials["status"]))
    for t in optuna_trials:
        if t.state == optuna.trial.TrialState.PRUNED:
            row = trials[trials["trial_id"] == f"trial-{t.number:04d}"].iloc[0]
            assert t.last_step == row["stop_epoch"]
    by_id = trials.set_index("trial_id")
    for t in optuna_trials:  # Optuna holds what Parquet holds, and names the harma trial
        assert t.user_attrs["harma_trial_id"] == f"trial-{t.number:04d}" and t.user_attrs["seed"] == 3407
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.value == by_id.loc[t.user_attrs["harma_trial_id"], "val_r_mean"]
    schemas = {str(pq.read_schema(p).remove_metadata()) for p in (scratch / "results" / "trials").rglob("*.parquet")}
    assert len(schemas) == 1  # one schema for the whole study
    assert {f"param.{k}" for k in yaml.safe_load(open(REPO / "studies" / "smoke.yaml"))["search"]["space"]} <= set(
        trials.columns)
    assert len(pd.read_parquet(scratch / "results" / "importances" / "study=smoke")) >= 1
    epochs = pd.read_parquet(scratch / "results" / "epochs")
    val = epochs[(epochs["split"] == "val") & (epochs["metric"] == "r_mean")]
    assert val.groupby("trial_id")["epoch"].max().to_dict() == dict(zip(trials["trial_id"], trials["stop_epoch"]))
    status = run_harma(["study", "status", "studies/smoke.yaml"], scratch)
    assert "COMPLETE" in status.stdout and "best so far" in status.stdout
    report = run_harma(["report", "smoke", "--results", "results", "--out", "reports/smoke"], scratch)
    assert report.returncode == 0, report.stderr[-3000:]
    page = (scratch / "reports" / "smoke" / "index.html").read_text()
    assert "Plotly.newPlot" in page and 'class="harma-figure"' in page
    assets = list((scratch / "reports" / "assets").glob("plotly-*.min.js"))
    assert len(assets) == 1 and f"../assets/{assets[0].name}" in page
    _assert_every_checkpoint_is_what_its_row_claims(scratch, trials)
    assert_verified(scratch, "smoke")
    _assert_verify_fails_on_a_broken_copy(scratch, trials)


def _assert_every_checkpoint_is_what_its_row_claims(scratch, trials):
    """ASHA stops trials at rungs and at max epochs: every best.pt holds the recorded best epoch and
    re-evaluates (in the trial's resolved config) to its row's val mR; last.pt holds the stop epoch; log.jsonl
    holds every reported epoch."""
    import torch

    from harma.config import from_dict
    from harma.eval_checkpoint import evaluate_checkpoint

    assert (trials["status"] == "PRUNED").any() and (trials["status"] == "COMPLETE").any()
    for row in trials.to_dict("records"):
        folder = scratch / "results" / "runs" / "smoke" / row["trial_id"]
        best = torch.load(folder / "best.pt", weights_only=True)
        assert best["epoch"] == row["best_epoch"], row["trial_id"]
        assert torch.load(folder / "last.pt", weights_only=True)["epoch"] == row["stop_epoch"], row["trial_id"]
        log = [yaml.safe_load(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        assert [x["epoch"] for x in log] == list(range(1, row["stop_epoch"] + 1)), row["trial_id"]
        cfg = from_dict(yaml.safe_load(row["resolved_config"]))
        again = evaluate_checkpoint(cfg, str(folder / "best.pt"), splits=("val",))["val"]
        assert abs(again["r_mean"] - row["val_r_mean"]) < 1e-6, (row["trial_id"], again["r_mean"], row["val_r_mean"])


def _assert_verify_fails_on_a_broken_copy(scratch, trials):
    """verify must fail where the artifacts lie: untrained weights in the best trial's best.pt, a missing log
    line, write debris."""
    import torch

    broken = scratch / "broken"
    shutil.copytree(scratch / "results", broken / "results")
    shutil.copytree(scratch / "studies", broken / "studies")
    ranked = trials.sort_values("val_r_mean", ascending=False)["trial_id"].tolist()
    runs = broken / "results" / "runs" / "smoke"
    best = torch.load(runs / ranked[0] / "best.pt", weights_only=True)
    best["trainable"] = {k: torch.zeros_like(v) for k, v in best["trainable"].items()}
    torch.save(best, runs / ranked[0] / "best.pt")
    log = runs / ranked[1] / "log.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))
    (broken / "results" / "epochs" / "study=smoke" / ".x.parquet.abcd1234.tmp").write_text("half")
    proc = verify(broken, "smoke")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    problems = [line for line in proc.stdout.splitlines() if line.startswith("problem: ")]
    assert any(f"{ranked[0]}: best.pt re-evaluates val_r_mean to" in line for line in problems), problems
    assert any(f"{ranked[1]}: log.jsonl holds epochs" in line for line in problems), problems
    assert any(".x.parquet.abcd1234.tmp: a temporary file" in line for line in problems), problems
    assert f"{len(problems)} problem(s)" in proc.stdout


DDP_STUDY = """
name: ddp
kind: ablation
base:
  config: synthetic-tiny
  set: {train.epochs: 2, train.batch_size: 16, data.synthetic_images: 120, data.image_root: .harma/synthetic-120}
resources: {gpus_per_trial: 0, cpus_per_worker: 1, workers_per_trial: 2, custom: {trial_slot: 1}}
max_concurrent: 1
seeds: [1]
scheduler: {type: none}
storage: results
arms:
  harma: {}
  diverges: {optim.lr: 1.0e+30}
"""


def test_ddp_trial_through_torch_trainer_and_a_nan_trial_fails_alone(scratch):
    (scratch / "studies" / "ddp.yaml").write_text(DDP_STUDY)
    proc = run_harma(["study", "run", "studies/ddp.yaml"], scratch)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    trials = read_trials(scratch).set_index("trial_id")
    assert trials.loc["harma-s1", "status"] == "COMPLETE" and trials.loc["harma-s1", "stop_epoch"] == 2
    assert trials.loc["diverges-s1", "status"] == "FAILED"
    assert "loss is nan" in trials.loc["diverges-s1", "error"]
    assert (scratch / "results" / "ray" / "ddp-harma-s1").is_dir()      # the TorchTrainer run, named by trial
    log = (scratch / "results" / "runs" / "ddp" / "harma-s1" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2
    assert_verified(scratch, "ddp")


def test_driver_killed_mid_study_then_resume_runs_every_trial_once(scratch):
    (scratch / "studies" / "killme.yaml").write_text(tiny_study("killme", "search", 3, SEARCH_BODY))
    driver = start_harma(["study", "run", "studies/killme.yaml"], scratch)
    deadline = time.time() + 300
    while time.time() < deadline:
        trials = read_trials(scratch)
        if len(trials) and (trials["status"] != "RUNNING").sum() >= 2 and (trials["status"] == "RUNNING").any():
            break
        assert driver.poll() is None, "the study finished before it could be killed"
        time.sleep(0.5)
    else:
        pytest.fail("the study never had finished and running trials at once")
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(3)
    before = read_trials(scratch)
    assert (before["status"] == "RUNNING").any()
    proc = run_harma(["study", "resume", "studies/killme.yaml"], scratch)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    after = read_trials(scratch)
    assert after["trial_id"].is_unique and len(after) == 6
    assert set(after["status"]) <= {"COMPLETE", "PRUNED"}
    finished_before = before[before["status"] != "RUNNING"].set_index("trial_id")["status"]
    assert after.set_index("trial_id").loc[finished_before.index, "status"].equals(finished_before)
    epochs = pd.read_parquet(scratch / "results" / "epochs")
    assert not epochs.duplicated(["trial_id", "epoch", "split", "metric"]).any()
    optuna_trials = optuna.load_study(study_name="killme",
                                      storage=f"sqlite:///{scratch}/results/optuna/killme.db").get_trials()
    assert len(optuna_trials) == 6 and all(t.state.is_finished() for t in optuna_trials)
    assert_verified(scratch, "killme")
