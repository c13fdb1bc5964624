"""The relay of Tune's trial hooks to the watchers, and the command-line options of watching: each hook becomes
its event (an epoch with its curves, this epoch's and the best objective; COMPLETE, PRUNED or FAILED by the
Parquet rule), a watcher that raises is dropped with one line while the others and the study go on, and
`--mlflow` without a tracking URI, or MLflow without its package, is one line before Ray starts; quiet hides the
libraries' info, duplicates and deprecation warnings (but not Ray's warning that token authentication is off)
and puts everything back, verbose shows their info."""
from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from harma.cli import main
from harma.progress.events import EpochReported, TrialEnded, TrialStarted
from harma.study.parse import load_study
from harma.tune import runner
from harma.tune.events import EventRelay
from harma.tune.quiet import library_output
from harma.tune.records import TRIAL_KEY, TrialSpec, failure_result

STUDY = """
name: s
kind: ablation
base: {config: synthetic-tiny, set: {train.epochs: 2, data.synthetic_images: 120}}
resources: {gpus_per_trial: 0, cpus_per_worker: 1}
storage: results
seeds: [1]
arms: {harma: {}}
"""


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "s.yaml").write_text(STUDY)
    monkeypatch.setattr(runner, "run_study", lambda *a, **k: pytest.fail("run_study was called"))
    return load_study("studies/s.yaml")


class Recorder:
    name = "recorder"

    def __init__(self, fail_on=None) -> None:
        self.events, self.fail_on, self.closed = [], fail_on, False

    def handle(self, event) -> None:
        if self.fail_on and isinstance(event, self.fail_on):
            raise RuntimeError("server gone\nsecond line")
        self.events.append(event)

    def close(self) -> None:
        self.closed = True


def trial(tid: str = "harma-s1") -> SimpleNamespace:
    return SimpleNamespace(config={TRIAL_KEY: TrialSpec(tid, 1, {"train.seed": 1}, arm="harma")}, error_file=None)


def result(epoch: int, planned: int = 2) -> dict:
    return {"epoch": epoch, "planned_epochs": planned, "val_r_mean": 10.0 * epoch, "best_val_r_mean": 15.0,
            "test_r_mean": 9.0, "loss": 0.5, "loss_contr": 0.25, "lr": 1e-3, "epoch_seconds": 3.0}


def test_each_hook_becomes_its_event(study):
    seen = Recorder()
    relay = EventRelay(study, [seen], clock=lambda: 5.0)
    relay.on_trial_start(0, [], trial())
    relay.on_trial_result(0, [], trial(), result(1))
    relay.on_trial_result(0, [], trial(), {"training_iteration": 1})       # not an epoch: no event
    relay.on_trial_result(0, [], trial(), result(2))
    relay.on_trial_complete(0, [], trial())
    started, first, second, ended = seen.events
    assert started == TrialStarted("harma-s1", {"train.seed": 1}, "harma", 5.0)
    assert first == EpochReported("harma-s1", 1, 2, {"val": {"r_mean": 10.0}, "test": {"r_mean": 9.0},
                                                     "train": {"loss": 0.5, "loss_contr": 0.25, "lr": 1e-3}},
                                  10.0, 15.0, 3.0, 5.0)
    assert second.epoch == 2 and ended == TrialEnded("harma-s1", "COMPLETE", 5.0, None)


@pytest.mark.parametrize("last, error, status, text", [
    (result(1), False, "PRUNED", None),
    (failure_result(FloatingPointError("loss is nan at epoch 1"), "val_r_mean"), False, "FAILED",
     "FloatingPointError: loss is nan at epoch 1"),
    (result(1), True, "FAILED", "trial failed (no error file)"),
])
def test_the_end_status_follows_the_parquet_rule(study, last, error, status, text):
    seen = Recorder()
    relay = EventRelay(study, [seen])
    relay.on_trial_result(0, [], trial(), last)
    (relay.on_trial_error if error else relay.on_trial_complete)(0, [], trial())
    assert (seen.events[-1].status, seen.events[-1].error) == (status, text)


def test_a_failing_watcher_is_dropped_with_one_line(study):
    broken, fine, lines = Recorder(fail_on=EpochReported), Recorder(), []
    broken.name = "mlflow"
    relay = EventRelay(study, [broken, fine], echo=lambda text, flush=False: lines.append(text))
    relay.on_trial_start(0, [], trial())
    for k in (1, 2):
        relay.on_trial_result(0, [], trial(), result(k))
    relay.on_trial_complete(0, [], trial())
    relay.close()
    assert lines == ["[s] mlflow stopped: RuntimeError: server gone"]
    assert len(broken.events) == 1 and len(fine.events) == 4 and fine.closed and not broken.closed


def test_the_relay_pickles_without_its_watchers(study):
    import pickle

    relay = pickle.loads(pickle.dumps(EventRelay(study, [Recorder()])))
    assert relay.sinks == [] and relay.epoch_key == "val_r_mean"


def test_mlflow_flag_without_a_tracking_uri_is_one_line(study, monkeypatch, one_line):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["study", "run", "studies/s.yaml", "--mlflow"]) == 2
    assert one_line() == ("harma: error: --mlflow: no tracking URI: set MLFLOW_TRACKING_URI (e.g. "
                          "http://127.0.0.1:5000 or sqlite:///mlflow.db), or `tracking: {mlflow: URI}` in the study "
                          "file")


def test_mlflow_without_its_package_is_one_line(study, monkeypatch, one_line):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    assert main(["study", "run", "studies/s.yaml", "--mlflow"]) == 2
    assert one_line() == ("harma: error: studies/s.yaml: tracking.mlflow: MLflow tracking needs the mlflow package "
                          "(pip install 'harma[mlflow]')")


def test_quiet_and_verbose_exclude_each_other(study, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["study", "run", "studies/s.yaml", "--quiet", "--verbose"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


class Caught(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_quiet_hides_library_chatter_and_puts_everything_back():
    import optuna

    caught = Caught()
    logging.getLogger("ray").addHandler(caught)
    before = (logging.getLogger("ray").level, optuna.logging.get_verbosity(), dict(os.environ))
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")           # every warning shows, but for the run's own filters
            quiet_run()
        assert caught.messages == ["Token authentication is disabled for this Ray cluster."]
        assert [str(w.message) for w in seen] == ["ours"]
        assert (logging.getLogger("ray").level, optuna.logging.get_verbosity(), dict(os.environ)) == before
        with library_output(verbose=True):
            logging.getLogger("ray.tune").info("shown when verbose")
        assert caught.messages[-1] == "shown when verbose"
    finally:
        logging.getLogger("ray").removeHandler(caught)


def quiet_run() -> None:
    """What a quiet run of a study meets: library logs and warnings, and harma's own warning."""
    import optuna
    import optuna.exceptions

    with library_output(verbose=False):
        assert os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1" and os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
        assert optuna.logging.get_verbosity() == logging.WARNING
        logging.getLogger("ray.tune.execution.tune_controller").error("Trial task failed for trial t1")
        logging.getLogger("ray._private.authentication.authentication_token_setup").warning(
            "Token authentication is enabled for this Ray cluster.")
        logging.getLogger("ray._private.authentication.authentication_token_setup").warning(
            "Token authentication is disabled for this Ray cluster.")
        logging.getLogger("ray.tune").info("an info line")
        warnings.warn_explicit("old API", DeprecationWarning, "x.py", 1, module="ray.tune.tuner")
        warnings.warn_explicit("Argument ``multivariate`` is an experimental feature.",
                               optuna.exceptions.ExperimentalWarning, "x.py", 1, module="optuna.samplers")
        warnings.warn_explicit("ours", DeprecationWarning, "x.py", 1, module="harma.cli")


def test_tune_names_each_trial_folder_after_its_trial_id():
    from harma.tune.runner import _TrialFolder

    spec = TrialSpec("trial-0007", 1, {})
    searched = SimpleNamespace(config={TRIAL_KEY: spec}, experiment_tag="7", trial_id="abc_00007")
    gridded = SimpleNamespace(config={TRIAL_KEY: ("__ref_ph", "db31e0ef")}, experiment_tag="1_trial=x",
                              trial_id="abc_00001")
    name = _TrialFolder(("harma-s1", "frozen-s1"))
    assert [name(searched), name(gridded)] == ["trial-0007", "frozen-s1"]
    assert _TrialFolder(())(gridded) == "abc_00001"            # no grid known: Tune's own id


def test_opening_the_optuna_study_hides_its_info_lines_unless_verbose(study):
    """`--verbose` shows Optuna's INFO lines ("Using an existing study ..."); otherwise opening hides them, and
    Optuna's logger level is put back either way."""
    from harma.tune.searcher import open_optuna_study

    search = load_study(Path(__file__).resolve().parents[2] / "studies" / "smoke.yaml")   # storage: ./results
    caught = Caught()
    logger = logging.getLogger("optuna")
    logger.addHandler(caught)
    before = logger.level
    try:
        open_optuna_study(search)                            # creates it
        open_optuna_study(search)                            # an existing study: its info line is hidden
        assert not any("existing study" in m for m in caught.messages) and logger.level == before
        with library_output(verbose=True):
            open_optuna_study(search)
        assert any("existing study" in m for m in caught.messages) and logger.level == before
    finally:
        logger.removeHandler(caught)
