"""What a running study shows and writes, end to end: a tiny ASHA search run with its output piped (no terminal)
prints only harma's lines (one per trial per epoch as it happens, each trial's end, the TensorBoard hint and
the final line; no Ray, Tune or Optuna banner, path or warning), writes TensorBoard runs per trial and MLflow runs
whose values are what the trainer reported (the epochs table), and leaves Ray's trial folders named by trial id
with no event files of Ray's own; `--quiet` prints only the final line and `--verbose` lets Ray's logs through."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harma_subprocess import harma_env, tiny_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ALLOWED = ("[watch] ",)                  # stdout: harma's lines of study `watch`; stderr: nothing on success
BODY = """
num_samples: 4
max_concurrent: 2
seeds: [3407]
scheduler: {{type: asha, max_epochs: 2, grace_period: 1, reduction_factor: 2}}
search:
  sampler: {{seed: 1, n_startup_trials: 2}}
  space:
    optim.lr: {{type: float, low: 1.0e-4, high: 2.0e-2, log: true}}
tracking: {{mlflow: {uri}}}
"""


def harma(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**harma_env(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    return subprocess.run([sys.executable, "-m", "harma.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("watch")
    (scratch / "studies").mkdir()
    body = BODY.format(uri=(scratch / "mlruns").as_uri())
    (scratch / "studies" / "watch.yaml").write_text(tiny_study("watch", "search", 2, body))
    proc = harma(["study", "run", "studies/watch.yaml"], scratch)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = scratch / "results"
    trials = pd.read_parquet(results / "trials" / "study=watch")
    epochs = pd.read_parquet(results / "epochs" / "study=watch")
    return scratch, proc, trials, epochs


def test_only_harma_lines_are_printed(ran):
    scratch, proc, trials, _ = ran
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith(ALLOWED) for line in lines), [l for l in lines if not l.startswith(ALLOWED)]
    assert f"[watch] TensorBoard: tensorboard --logdir {scratch}/results/tensorboard/watch" in lines
    best = trials.sort_values(["val_r_mean", "trial_id"], ascending=[False, True]).iloc[0]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(trials["status"].value_counts().items()))
    assert re.fullmatch(rf"\[watch\] done in (\d+s|\d+m\d\ds): {counts} of 4 trials; best val_r_mean "
                        rf"{best['val_r_mean']:.2f} \({best['trial_id']}\)", lines[-1]), lines[-1]


def test_one_line_per_trial_per_epoch_as_it_happens(ran):
    _, proc, trials, epochs = ran
    reported = epochs[(epochs["split"] == "val") & (epochs["metric"] == "r_mean")]
    expected = sorted((r.trial_id, int(r.epoch), f"{r.value:.2f}") for r in reported.itertuples())
    found = sorted((m[0], int(m[1]), m[2]) for m in re.findall(
        r"^\[watch\] (trial-\d+) epoch (\d+)/2: val_r_mean (\d+\.\d\d) \(best", proc.stdout, re.M))
    assert found == expected and len(found) == int(trials["stop_epoch"].sum())
    first_end = proc.stdout.index(" COMPLETE at epoch") if " COMPLETE at epoch" in proc.stdout else len(proc.stdout)
    assert proc.stdout.index(" epoch 1/2: ") < first_end           # epochs are shown before any trial ends


def test_tensorboard_holds_what_the_trainer_reported(ran):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    scratch, _, trials, epochs = ran
    folder = scratch / "results" / "tensorboard" / "watch"
    assert sorted(p.name for p in folder.iterdir()) == sorted(trials["trial_id"])
    for row in trials.to_dict("records"):
        acc = EventAccumulator(str(folder / row["trial_id"]))
        acc.Reload()
        mine = epochs[epochs["trial_id"] == row["trial_id"]]
        assert len(mine) > 10
        for e in mine.itertuples():
            got = {s.step: s.value for s in acc.Scalars(f"{e.split}/{e.metric}")}
            assert got[e.epoch] == pytest.approx(e.value, rel=1e-6, abs=1e-6), (row["trial_id"], e)
        assert acc.Scalars("best/val_r_mean")[-1].value == pytest.approx(row["val_r_mean"], rel=1e-6)
        start = plugin_data_pb2.HParamsPluginData.FromString(
            acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
        assert start.hparams["optim.lr"].number_value == pytest.approx(row["param.optim.lr"])


def test_mlflow_holds_a_run_per_trial_with_what_the_trainer_reported(ran, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")

    scratch, _, trials, epochs = ran
    client = MlflowClient((scratch / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("watch")
    runs = {r.data.tags.get("harma_trial_id", "study"): r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == sorted([*trials["trial_id"], "study"])
    for row in trials.to_dict("records"):
        run = runs[row["trial_id"]]
        assert run.data.tags["mlflow.parentRunId"] == runs["study"].info.run_id
        assert float(run.data.params["optim.lr"]) == pytest.approx(row["param.optim.lr"])
        assert (run.info.status, run.data.tags["harma_status"]) == ("FINISHED", row["status"])
        mine = epochs[(epochs["trial_id"] == row["trial_id"]) & (epochs["split"] == "val")
                      & (epochs["metric"] == "r_mean")].sort_values("epoch")
        history = client.get_metric_history(run.info.run_id, "val/r_mean")
        assert [(m.step, m.value) for m in history] == list(zip(mine["epoch"], mine["value"]))
        best = scratch / "results" / "runs" / "watch" / row["trial_id"] / "best.pt"
        got = client.download_artifacts(run.info.run_id, "checkpoint/best.pt", str(scratch / "down" / row["trial_id"]))
        assert Path(got).read_bytes() == best.read_bytes()


def test_ray_trial_folders_are_named_by_trial_id_without_event_files(ran):
    scratch, _, trials, _ = ran
    (experiment,) = [p for p in (scratch / "results" / "ray").iterdir() if p.is_dir()]
    assert sorted(p.name for p in experiment.iterdir() if p.is_dir()) == sorted(trials["trial_id"])
    assert list((scratch / "results" / "ray").rglob("events.out.tfevents*")) == []


def test_quiet_prints_only_the_final_line_and_verbose_shows_ray(ran):
    scratch, proc, _, _ = ran
    quiet = harma(["study", "resume", "watch", "--quiet"], scratch)
    assert quiet.returncode == 0 and quiet.stderr == ""
    (line,) = quiet.stdout.splitlines()
    assert line.startswith("[watch] done in ")
    assert line.split(": ", 1)[1] == proc.stdout.splitlines()[-1].split(": ", 1)[1]     # same counts and best
    verbose = harma(["study", "resume", "watch", "--verbose"], scratch)
    assert verbose.returncode == 0 and "INFO worker.py" in verbose.stderr
    assert "Started a local Ray instance" in verbose.stderr
