"""ResultsStore: schema round trip, typed parameter columns, version check, atomic writes, plain-pandas
reads of the hive-partitioned trees, rewrites without duplicates, deletes and object-store URIs."""
from __future__ import annotations

import datetime as dt
import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harma.results.schema import RecordError, SchemaVersionError, StudyColumns
from harma.results.store import ResultsStore
from harma.metrics import METRIC_KEYS
from harma.results.schema import trial_table

UTC = dt.timezone.utc


def full_record(trial_id: str = "t001", study: str = "abl", **over) -> dict:
    rec = {
        "study": study, "trial_id": trial_id, "kind": "ablation", "arm": "harma", "seed": 3,
        "status": "COMPLETE", "stop_epoch": 10, "best_epoch": 7,
        **{f"val_{m}": 10.0 + i for i, m in enumerate(METRIC_KEYS)},
        **{f"test_{m}": 20.5 + i for i, m in enumerate(METRIC_KEYS)},
        "trainable_params": 5_934_397, "total_params": 157_000_000, "wall_seconds": 3600.5,
        "gpu_seconds": 7201.0, "peak_rss_bytes": 3 * 2**30, "peak_gpu_bytes": 12 * 2**30, "error": None,
        "resolved_config": "model:\n  arch: tiny\n", "git_commit": "abc123", "git_dirty": False,
        "gpu_name": "NVIDIA H100 80GB HBM3", "gpu_count": 2, "cuda_version": "12.4",
        "package_versions": {"torch": "2.4.0", "open_clip_torch": "2.26.1"}, "host": "node-a",
        "node_id": "n1", "started_at": dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        "finished_at": dt.datetime(2024, 5, 1, 13, 0, 0, tzinfo=UTC),
        "params": {"adapter.bottleneck": 64, "loss.gamma": 1.5, "adapter.share": "bishare",
                   "adapter.enabled": True},
    }
    rec.update(over)
    return rec


PARAMS = {"adapter.bottleneck": "int", "loss.gamma": "float", "adapter.share": "string", "adapter.enabled": "bool"}


def columns(study: str = "abl", **extra: str) -> StudyColumns:
    return StudyColumns(study, {**PARAMS, **extra})


def write(store: ResultsStore, rec: dict, **extra: str) -> str:
    return store.write_trial(rec, columns(rec["study"], **extra))


def test_trial_round_trip_values_and_dtypes(tmp_path):
    store = ResultsStore(tmp_path)
    rec = full_record()
    write(store, rec)
    df = store.read_trials()
    assert len(df) == 1
    row = df.iloc[0]
    for key, value in rec.items():
        if key == "params":
            continue
        if key == "package_versions":
            assert json.loads(row[key]) == value
        elif key == "error":
            assert pd.isna(row[key])
        elif key.endswith("_at"):
            assert row[key].to_pydatetime() == value
        else:
            assert row[key] == value, key
    for key, value in rec["params"].items():
        assert row[f"param.{key}"] == value
    dtypes = df.dtypes.astype(str).to_dict()
    assert dtypes["seed"] == dtypes["trainable_params"] == dtypes["param.adapter.bottleneck"] == "Int64"
    assert dtypes["val_r_mean"] == dtypes["param.loss.gamma"] == dtypes["gpu_seconds"] == "float64"
    assert dtypes["param.adapter.enabled"] == "boolean"
    assert dtypes["started_at"] == "datetime64[us, UTC]"
    assert pd.api.types.is_string_dtype(df["param.adapter.share"]) and pd.api.types.is_string_dtype(df["study"])


def test_dtypes_stable_when_values_missing(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_trial({"study": "s", "trial_id": "r1", "kind": "search", "status": "RUNNING"}, columns("s"))
    df = store.read_trials("s")
    assert str(df["seed"].dtype) == "Int64" and df["seed"].isna().all()
    assert str(df["finished_at"].dtype) == "datetime64[us, UTC]"
    empty = ResultsStore(tmp_path / "nothing").read_trials()
    assert len(empty) == 0 and list(empty.columns)[:3] == ["study", "trial_id", "kind"]


def test_param_columns_are_typed_in_the_file(tmp_path):
    store = ResultsStore(tmp_path)
    path = write(store, full_record())
    schema = pq.read_schema(path)
    assert schema.field("param.adapter.bottleneck").type == pa.int64()
    assert schema.field("param.loss.gamma").type == pa.float64()
    assert schema.field("param.adapter.share").type == pa.string()
    assert schema.field("param.adapter.enabled").type == pa.bool_()
    assert schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert schema.metadata[b"harma.schema_version"] == b"2.1"
    assert schema.field("schema_version").type == schema.field("objective").type == pa.string()
    assert schema.field("git_dirty").type == pa.bool_() and schema.field("gpu_count").type == pa.int64()


def test_every_file_of_a_study_has_every_parameter_column(tmp_path):
    store = ResultsStore(tmp_path)
    extra = {"x.only_a": "string", "x.only_b": "string"}
    a = write(store, full_record("a", params={"loss.gamma": 2, "x.only_a": "q"}), **extra)
    b = write(store, full_record("b", params={"loss.gamma": 1.5, "x.only_b": None}), **extra)
    assert pq.read_schema(a).remove_metadata() == pq.read_schema(b).remove_metadata()
    assert pq.read_schema(a).field("param.loss.gamma").type == pa.float64()
    df = store.read_trials("abl")
    assert df["param.loss.gamma"].tolist() == [2.0, 1.5]
    assert df["param.x.only_a"].iloc[0] == "q" and pd.isna(df["param.x.only_a"].iloc[1])
    assert df["param.adapter.bottleneck"].isna().all() and df["schema_version"].tolist() == ["2.1", "2.1"]
    assert df["objective"].tolist() == ["val_r_mean"] * 2 and df["objective_mode"].tolist() == ["max"] * 2


def test_a_parameter_outside_the_study_or_of_another_type_is_named(tmp_path):
    store = ResultsStore(tmp_path)
    with pytest.raises(RecordError, match="'x.new' is not a parameter of study abl"):
        write(store, full_record(params={"x.new": 1}))
    with pytest.raises(RecordError, match="adapter.bottleneck: 'big' is a string.*holds int"):
        write(store, full_record(params={"adapter.bottleneck": "big"}))
    with pytest.raises(RecordError, match="objective"):
        StudyColumns("abl", PARAMS, objective="val_loss")


def _write_with_version(path, version: str) -> None:
    table = trial_table(full_record(), columns())
    meta = dict(table.schema.metadata)
    meta[b"harma.schema_version"] = version.encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


def test_other_major_version_is_a_clear_error(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.trial_path("abl", "old")
    os.makedirs(os.path.dirname(path))
    _write_with_version(path, "3.1")
    with pytest.raises(SchemaVersionError) as err:
        store.read_trials()
    msg = str(err.value)
    assert "old.parquet" in msg and "3.1" in msg and "2.1" in msg


def test_same_major_other_minor_reads(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.trial_path("abl", "newer")
    os.makedirs(os.path.dirname(path))
    _write_with_version(path, "2.7")
    assert len(store.read_trials()) == 1


def test_new_results_folders_are_0700_and_files_0600_existing_root_kept(tmp_path, umask):
    import stat

    umask(0o022)
    existing = tmp_path / "existing"
    existing.mkdir()
    existing.chmod(0o755)
    for root in (tmp_path / "new", existing):
        store = ResultsStore(root)
        write(store, full_record())
        store.write_epoch("abl", "t001", 1, {"val": {"r_mean": 1.0}}, seconds=2.0)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*")}
    assert modes.pop("existing") == 0o755
    files = {k for k in modes if k.endswith(".parquet")}
    assert files == {f"{root}/{name}" for root in ("new", "existing")
                     for name in ("trials/study=abl/t001.parquet", "epochs/study=abl/t001-e0001.parquet")}
    assert {k: v for k, v in modes.items() if k in files} == dict.fromkeys(files, 0o600)
    assert {k: v for k, v in modes.items() if k not in files} == dict.fromkeys(set(modes) - files, 0o700)
    assert "new" in modes and "existing/trials/study=abl" in modes


def test_writes_leave_no_temporary_files(tmp_path):
    store = ResultsStore(tmp_path)
    for e in range(3):
        write(store, full_record(status="RUNNING", stop_epoch=e))
        store.write_epoch("abl", "t001", e, {"val": {"r_mean": 1.0 * e}}, seconds=2.0)
    names = [n for _, _, files in os.walk(tmp_path) for n in files]
    assert sorted(names) == ["t001-e0000.parquet", "t001-e0001.parquet", "t001-e0002.parquet", "t001.parquet"]


def test_failed_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    write(store, full_record(status="RUNNING"))

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write(store, full_record(status="COMPLETE"))
    monkeypatch.undo()
    assert store.read_trials()["status"].tolist() == ["RUNNING"]
    assert [n for _, _, f in os.walk(tmp_path) for n in f if n.startswith(".")] == []


def test_plain_pandas_reads_hive_partitions(tmp_path):
    store = ResultsStore(tmp_path)
    for study in ("abl", "srch"):
        for t in ("t1", "t2"):
            write(store, full_record(t, study=study))
            store.write_epoch(study, t, 1, {"val": {"r_mean": 5.0}, "train": {"loss": 0.1}}, 9.0)
    trials = pd.read_parquet(tmp_path / "trials")
    assert len(trials) == 4
    assert sorted(trials["study"].astype(str).unique()) == ["abl", "srch"]
    assert set(trials["param.adapter.bottleneck"]) == {64}
    epochs = pd.read_parquet(tmp_path / "epochs")
    assert len(epochs) == 8 and set(epochs["metric"]) == {"r_mean", "loss"}


def test_rewriting_a_trial_replaces_it(tmp_path):
    store = ResultsStore(tmp_path)
    write(store, full_record(status="RUNNING", val_r_mean=None))
    write(store, full_record(status="COMPLETE", val_r_mean=33.0))
    store.write_epoch("abl", "t001", 1, {"val": {"r_mean": 1.0}}, 1.0)
    store.write_epoch("abl", "t001", 1, {"val": {"r_mean": 2.0}}, 1.0)
    df = store.read_trials()
    assert df[["status", "val_r_mean"]].values.tolist() == [["COMPLETE", 33.0]]
    assert store.read_epochs()["value"].tolist() == [2.0]


def test_epochs_long_format(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_epoch("abl", "t001", 12, {"val": {"r_mean": 30.0, "txt_r1": 10.0},
                                          "train": {"loss": 1.25, "lr": 1e-4}}, seconds=61.5)
    df = store.read_epochs("abl")
    assert df[["epoch", "split", "metric", "value"]].values.tolist() == [
        [12, "train", "loss", 1.25], [12, "train", "lr", 1e-4], [12, "val", "r_mean", 30.0],
        [12, "val", "txt_r1", 10.0]]
    assert (df["seconds"] == 61.5).all() and str(df["epoch"].dtype) == "Int64"
    assert os.path.exists(tmp_path / "epochs" / "study=abl" / "t001-e0012.parquet")


def test_delete_trial_removes_its_files_only(tmp_path):
    store = ResultsStore(tmp_path)
    for t in ("t1", "t10"):
        write(store, full_record(t))
        for e in (1, 2):
            store.write_epoch("abl", t, e, {"val": {"r_mean": 1.0}}, 1.0)
    assert store.delete_trial("abl", "t1") == 3
    assert store.read_trials()["trial_id"].tolist() == ["t10"]
    assert set(store.read_epochs()["trial_id"]) == {"t10"}


def test_studies_and_filters(tmp_path):
    store = ResultsStore(tmp_path)
    write(store, full_record("a", study="s2"))
    write(store, full_record("b", study="s1"))
    store.write_epoch("s3", "c", 0, {"val": {"r_mean": 1.0}}, 1.0)
    assert store.studies() == ["s1", "s2", "s3"]
    assert store.read_trials("s2")["trial_id"].tolist() == ["a"]
    assert store.read_trials()["study"].tolist() == ["s1", "s2"]


@pytest.mark.parametrize("bad, match", [
    ({"status": "DONE"}, "status"), ({"kind": "grid"}, "kind"), ({"colour": 1}, "unknown keys"),
    ({"trial_id": "../x"}, "trial_id"), ({"params": {"loss.gamma": [1, 2]}}, "list"),
])
def test_bad_records_are_named(tmp_path, bad, match):
    with pytest.raises(RecordError, match=match):
        write(ResultsStore(tmp_path), full_record(**bad))


def test_object_store_uri_round_trip():
    store = ResultsStore("mock:///bucket/results")
    write(store, full_record())
    store.write_epoch("abl", "t001", 1, {"val": {"r_mean": 2.0}}, 3.0)
    assert store.studies() == ["abl"]
    assert store.read_trials()["trial_id"].tolist() == ["t001"]
    assert store.read_epochs()["value"].tolist() == [2.0]
    assert store.delete_trial("abl", "t001") == 2 and len(store.read_trials()) == 0
