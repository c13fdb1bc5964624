"""final_status: one rule for Parquet and Optuna; the tie gap travels from the trainer's record to Parquet."""
import json
from types import SimpleNamespace

import pandas as pd
import pytest

from harma.epoch_record import EpochRecord
from harma.metrics import METRIC_KEYS, REPORTED_KEYS, TIE_GAP_KEY
from harma.results.trials import COMPLETE, FAILED, PRUNED
from harma.tune.records import TRIAL_KEY, TrialSpec, epoch_result, final_status


def test_final_status():
    assert final_status({"epoch": 4, "planned_epochs": 4}, error=False) == COMPLETE
    assert final_status({"epoch": 2, "planned_epochs": 4}, error=False) == PRUNED
    assert final_status({"epoch": 4, "planned_epochs": 4}, error=True) == FAILED
    assert final_status(None, error=False) == PRUNED


def epoch_record(epoch: int) -> EpochRecord:
    """A trainer record as `harma.train` builds it, metrics from `retrieval_metrics` (7 keys + the tie gap)."""
    val = {k: 10.0 + i for i, k in enumerate(REPORTED_KEYS)}
    test = {k: 20.0 + i for i, k in enumerate(REPORTED_KEYS)}
    return EpochRecord(epoch=epoch, val=val, test=test, train={"loss": 0.5}, lr=1e-4, epoch_seconds=3.0,
                       train_seconds=2.0, images_per_s=9.0, best_epoch=epoch, best_val=val, best_test=test,
                       trainable_params=5, total_params=50, peak_rss_bytes=0)


def test_an_epoch_result_reports_the_tie_gap_of_this_epoch_only():
    flat = epoch_result(epoch_record(2), planned_epochs=4, where={"host": "h"})
    assert flat["planned_epochs"] == 4 and flat["host"] == "h" and flat["epoch"] == 2
    assert flat["val_r_mean_tie_gap"] == 17.0 and flat["test_r_mean_tie_gap"] == 27.0
    assert {f"val_{k}" for k in METRIC_KEYS} <= set(flat) and flat["test_r_mean"] == 26.0
    assert not any(k.startswith("best_") and k.endswith(TIE_GAP_KEY) for k in flat)


def test_parquet_callback_writes_the_tie_gap_as_an_epoch_row(tmp_path):
    import yaml

    from harma.results.store import ResultsStore
    from harma.tune.callbacks import ParquetResults
    from harma.study.columns import study_columns
    from harma.tune.records import Provenance
    from harma.study.parse import load_study

    study = load_study("studies/ablation-smoke.yaml")
    store = ResultsStore(tmp_path)
    callback = ParquetResults(study, store, study_columns(study), Provenance("abc", True, "{}"),
                              str(tmp_path / "runs"), total=1, echo=lambda *a, **k: None)
    arm, overrides = next(iter(study.arms.items()))
    trial = SimpleNamespace(config={TRIAL_KEY: TrialSpec("t1", 0, {**overrides, "train.seed": 0}, arm=arm)})
    callback.on_trial_result(0, [], trial, epoch_result(epoch_record(1), 1, {"host": "h"}))
    epochs = store.read_epochs(study.name)
    gap = epochs[epochs["metric"] == TIE_GAP_KEY].set_index("split")["value"]
    assert gap.to_dict() == {"test": 27.0, "val": 17.0}
    assert set(epochs[epochs["split"] == "val"]["metric"]) == set(REPORTED_KEYS)
    row = store.read_trials(study.name).iloc[0]
    assert row["val_r_mean"] == 16.0 and row["git_dirty"] and row["git_commit"] == "abc"
    assert row["peak_rss_bytes"] == 0 and pd.isna(row["peak_gpu_bytes"])
    config = yaml.safe_load(row["resolved_config"])
    assert config["train"]["seed"] == 0 and config["train"]["out_dir"] == str(tmp_path / "runs" / study.name / "t1")
    for key, value in {**study.base_set, **overrides}.items():
        section, name = key.split(".", 1)
        assert config[section][name] == value and row[f"param.{key}"] == value


def test_a_new_loss_term_reaches_the_log_the_console_tune_and_the_epochs_table(tiny_cfg, tmp_path, monkeypatch,
                                                                               capsys):
    """A loss term the trainer's step adds (here `extra`, constant 0.25) flows through without any list naming it:
    the record, log.jsonl, the console line, the Tune result and the Parquet epochs table's train split."""
    import harma.train_step as train_step
    from harma.cli import _print_epoch
    from harma.config import apply_overrides
    from harma.results.store import ResultsStore
    from harma.train import train
    from harma.tune.callbacks import ParquetResults
    from harma.study.columns import study_columns
    from harma.tune.records import Provenance
    from harma.study.parse import load_study

    real = train_step.harma_loss

    def with_extra(*args, **kwargs):
        parts = real(*args, **kwargs)
        return {**parts, "extra": parts["loss"].detach() * 0 + 0.25}

    monkeypatch.setattr(train_step, "harma_loss", with_extra)
    records = []
    cfg = apply_overrides(tiny_cfg, {"train.epochs": 1})
    train(cfg, report=lambda r: (records.append(r), _print_epoch(r)))
    assert records[0].train["loss_extra"] == 0.25
    assert json.loads(open(f"{cfg.train.out_dir}/log.jsonl").readline())["train"]["loss_extra"] == 0.25
    assert "loss_extra=0.2500" in capsys.readouterr().out
    result = epoch_result(records[0], 1, {"host": "h"})
    assert result["loss_extra"] == 0.25

    study = load_study("studies/ablation-smoke.yaml")
    store = ResultsStore(tmp_path / "results")
    callback = ParquetResults(study, store, study_columns(study), Provenance("abc", True, "{}"),
                              str(tmp_path / "runs"), total=1, echo=lambda *a, **k: None)
    arm, overrides = next(iter(study.arms.items()))
    trial = SimpleNamespace(config={TRIAL_KEY: TrialSpec("t1", 0, {**overrides, "train.seed": 0}, arm=arm)})
    callback.on_trial_result(0, [], trial, result)
    epochs = store.read_epochs(study.name)
    curve = epochs[epochs["split"] == "train"].set_index("metric")["value"]
    assert set(curve.index) == {"loss", "loss_contr", "loss_extra", "lr", "images_per_s"}
    assert curve["loss_extra"] == 0.25 and curve["loss"] == records[0].train["loss"]


def test_a_failure_result_is_failed_and_never_retried():
    from harma.errors import is_curable
    from harma.train import NonFiniteError
    from harma.tune.records import FAILURE_KEY, FAILURE_TYPE_KEY, failure_result, final_status

    result = failure_result(NonFiniteError("epoch 2 step 5: loss is nan"), "val_r_mean")
    assert final_status(result, error=False) == "FAILED"
    assert result[FAILURE_KEY] == "NonFiniteError: epoch 2 step 5: loss is nan"
    assert result[FAILURE_TYPE_KEY] == "NonFiniteError"
    assert result["val_r_mean"] != result["val_r_mean"]            # NaN: Tune sees the objective key
    assert not is_curable(result[FAILURE_TYPE_KEY])
    assert not is_curable("ConfigError") and not is_curable("CheckpointError") and not is_curable("StudyLockedError")
    assert is_curable("ActorDiedError") and is_curable(None)       # not a harma error: a rerun may pass
    assert is_curable("WriteError")                                # a full disk may have room on a rerun


def test_the_error_column_keeps_the_last_line_first_and_a_bounded_tail():
    from harma.tune.records import ERROR_TAIL_CHARS, error_summary

    trace = "Traceback (most recent call last):\n" + "".join(f'  File "x.py", line {i}\n' for i in range(500))
    kept = error_summary(trace + "ValueError: the real reason\n\n")
    assert kept.splitlines()[0] == "ValueError: the real reason"
    assert len(kept) <= len("ValueError: the real reason") + 1 + 3 + ERROR_TAIL_CHARS
    assert kept.endswith('line 499')
    assert error_summary("one line") == "one line" and error_summary("") == "trial failed (no error text)"


def test_the_best_so_far_line_counts_trials_earlier_drivers_finished(tmp_path):
    from harma.results.store import ResultsStore
    from harma.tune.callbacks import ParquetResults
    from harma.study.columns import study_columns
    from harma.tune.records import Provenance
    from harma.study.parse import load_study

    study = load_study("studies/ablation-smoke.yaml")
    store, columns = ResultsStore(tmp_path), study_columns(study)
    for tid, value, status in (("old-a", 41.5, "COMPLETE"), ("old-b", 12.0, "PRUNED"), ("old-c", None, "FAILED")):
        store.write_trial({"study": study.name, "trial_id": tid, "kind": study.kind, "status": status,
                           **({"val_r_mean": value} if value is not None else {}), "params": {}}, columns)
    lines = []
    callback = ParquetResults(study, store, columns, Provenance(None, None, "{}"), str(tmp_path / "runs"), total=1,
                              echo=lambda text, **k: lines.append(text), protected={"old-a", "old-b", "old-c"})
    assert callback.best == (41.5, "old-a")
    callback._report({"trial_id": "new", "status": "COMPLETE", "val_r_mean": 30.0, "stop_epoch": 1})
    assert lines[-1].endswith("val_r_mean 30.00; best 41.50 (old-a)")


def test_provenance_is_the_harma_checkout_wherever_the_driver_runs(tmp_path, monkeypatch):
    import subprocess
    from pathlib import Path

    import harma
    from harma.tune import records

    checkout = Path(harma.__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("harma is not imported from a git checkout here")
    monkeypatch.chdir(tmp_path)                                    # not a git folder at all
    assert records.provenance().git_commit == head.stdout.strip()
    other = tmp_path / "project"                                   # an installed copy inside another repository
    (other / "site" / "harma").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    monkeypatch.setattr(harma, "__file__", str(other / "site" / "harma" / "__init__.py"))
    found = records.provenance()
    assert found.git_commit is None and found.git_dirty is None
    assert "harma" in json.loads(found.package_versions)
