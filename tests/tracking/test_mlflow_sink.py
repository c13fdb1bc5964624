"""MLflow runs from a driver's events, read back with MLflow's client: a run for the study, one nested run per trial
with its overrides as params, every epoch's metrics at step = epoch with the values reported, its best.pt as an
artifact and its status; a second driver (a resumed study) finds the same runs and logs no epoch twice.  Against
a local file store, a local SQLite store and a `mlflow server` on 127.0.0.1 started here (skipped where it
cannot start)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow                       # about 90 s: SQLite schemas and a server start
pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

from harma.progress.events import EpochReported, StudyBegan, StudyEnded, TrialEnded, TrialStarted  # noqa: E402
from harma.tracking.mlflow_runs import MlflowSink  # noqa: E402

PARAMS = {"optim.lr": 0.004, "adapter.gate_init": -0.25, "train.seed": 3407}


def reported(tid: str, k: int) -> EpochReported:
    curves = {"val": {"r_mean": 20.0 + k}, "test": {"r_mean": 18.5 + k}, "train": {"loss": 1.0 / k}}
    return EpochReported(tid, k, 3, curves, 20.0 + k, 20.0 + k, 3.0, 1_700_000_010.0 + k)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1 (SQLite backend, artifacts served by it); skipped where it cannot start."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{folder}/db.sqlite", "--artifacts-destination",
                             str(folder / "artifacts"), "--workers", "1"], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.skip("mlflow server did not start on 127.0.0.1")
        time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(params=["file", "sqlite", "server"])
def uri(request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                      # MLflow puts a SQLite store's artifacts under ./mlruns
    if request.param == "file":
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        return (tmp_path / "store").as_uri()
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/mlflow.db"
    return request.getfixturevalue("server")


def checkpoints(folder: Path):
    return lambda tid: folder / tid / "best.pt"


def drive(sink: MlflowSink, study: str, trials: dict[str, tuple[list[int], str | None]],
          interrupted: str | None = None) -> None:
    """Feed `sink` a driver's events of `study`: each trial's epochs, then its end status (None: still running)."""
    sink.handle(StudyBegan(study, "search", "val_r_mean", "max", 3, 3, 2, 3, True, 1_700_000_000.0))
    for tid, (epochs, status) in trials.items():
        sink.handle(TrialStarted(tid, PARAMS, None, 1_700_000_001.0))
        for k in epochs:
            sink.handle(reported(tid, k))
        if status:
            sink.handle(TrialEnded(tid, status, 1_700_000_100.0))
    sink.handle(StudyEnded(1_700_000_200.0, interrupted))
    sink.close()


def runs_of(client: MlflowClient, study: str) -> dict[str, object]:
    experiment = client.get_experiment_by_name(study)
    return {r.data.tags.get("harma_trial_id", "study"): r for r in client.search_runs([experiment.experiment_id])}


def test_a_run_per_trial_under_the_study_with_params_metrics_and_checkpoint(uri, tmp_path):
    (tmp_path / "runs" / "trial-0000").mkdir(parents=True)
    (tmp_path / "runs" / "trial-0000" / "best.pt").write_bytes(b"weights" * 100)
    drive(MlflowSink(uri, checkpoints(tmp_path / "runs")), "st",
          {"trial-0000": ([1, 2, 3], "COMPLETE"), "trial-0001": ([1], "FAILED")})
    client = MlflowClient(uri)
    runs = runs_of(client, "st")
    assert sorted(runs) == ["study", "trial-0000", "trial-0001"]
    study, done, failed = runs["study"], runs["trial-0000"], runs["trial-0001"]
    assert study.info.status == "FINISHED" and study.info.run_name == "st"
    assert done.data.tags["mlflow.parentRunId"] == failed.data.tags["mlflow.parentRunId"] == study.info.run_id
    assert done.data.params == {"optim.lr": "0.004", "adapter.gate_init": "-0.25", "train.seed": "3407"}
    history = client.get_metric_history(done.info.run_id, "val/r_mean")
    assert [(m.step, m.value) for m in history] == [(1, 21.0), (2, 22.0), (3, 23.0)]
    assert [(m.step, m.value) for m in client.get_metric_history(done.info.run_id, "train/loss")] == [
        (1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert done.data.metrics["best/val_r_mean"] == 23.0 and done.data.metrics["test/r_mean"] == 21.5
    assert (done.info.status, done.data.tags["harma_status"]) == ("FINISHED", "COMPLETE")
    assert (failed.info.status, failed.data.tags["harma_status"]) == ("FAILED", "FAILED")
    got = client.download_artifacts(done.info.run_id, "checkpoint/best.pt", str(tmp_path / "down"))
    assert Path(got).read_bytes() == b"weights" * 100
    assert client.list_artifacts(failed.info.run_id) == []


def test_a_resumed_study_keeps_one_run_per_trial_and_logs_no_epoch_twice(uri, tmp_path):
    drive(MlflowSink(uri, checkpoints(tmp_path)), "resumed", {"trial-0002": ([1, 2], None)}, interrupted="SIGINT")
    client = MlflowClient(uri)
    first = runs_of(client, "resumed")
    assert first["study"].info.status == "KILLED" and first["trial-0002"].info.status == "KILLED"
    drive(MlflowSink(uri, checkpoints(tmp_path)), "resumed", {"trial-0002": ([1, 2, 3], "PRUNED")})
    again = runs_of(client, "resumed")
    assert sorted(again) == ["study", "trial-0002"]
    assert again["study"].info.run_id == first["study"].info.run_id
    run = again["trial-0002"]
    assert run.info.run_id == first["trial-0002"].info.run_id and run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/r_mean")] == [1, 2, 3]
