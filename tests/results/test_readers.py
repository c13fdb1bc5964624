"""Readers with no project code see every column of a study, typed: pandas.read_parquet on the study's folder,
DuckDB read_parquet(glob, hive_partitioning=true) without union_by_name, polars scan_parquet(glob,
hive_partitioning=True), on a search study and an ablation study written into the same results folder, where
each trial sets only some of the study's parameters.  Files of schema 1.0 read through the store and, once
conformed (what `harma study resume` does), through the plain readers too."""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harma.results.store import ResultsStore

from harma.results.schema import StudyColumns

UTC = dt.timezone.utc
SEARCH = StudyColumns("srch", {"adapter.bottleneck": "int", "adapter.share": "string", "loss.gamma": "float",
                               "loss.margin": "float", "train.seed": "int", "train.epochs": "int"},
                      objective="val_txt_r1", objective_mode="min")
ABLATION = StudyColumns("abl", {"adapter.share": "string", "adapter.block_gate": "string",
                                "loss.w_triplet": "float", "adapter.towers": "string", "train.seed": "int",
                                "train.epochs": "int"})
# each trial overrides a different subset; the first file (in name order) sets the fewest
SEARCH_TRIALS = {
    "trial-0000": {"adapter.bottleneck": 16, "train.seed": 1, "train.epochs": 2},
    "trial-0001": {"adapter.bottleneck": 32, "loss.gamma": 1.5, "loss.margin": 0.2, "train.seed": 1,
                   "train.epochs": 2},
    "trial-0002": {"adapter.bottleneck": 8, "adapter.share": "both", "loss.gamma": 2.0, "train.seed": 1,
                   "train.epochs": 2},
}
ABLATION_TRIALS = {
    "bishare-both-s0": {"adapter.share": "both", "train.seed": 0, "train.epochs": 2},
    "contrastive-only-s0": {"loss.w_triplet": 0.0, "train.seed": 0, "train.epochs": 2},
    "frozen-s0": {"adapter.towers": "none", "train.seed": 0, "train.epochs": 2},
    "harma-s0": {"train.seed": 0, "train.epochs": 2},
    "no-block-gate-s0": {"adapter.block_gate": "open", "train.seed": 0, "train.epochs": 2},
}
DUCK = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}
POLARS = {"int": pl.Int64, "float": pl.Float64, "string": pl.String, "bool": pl.Boolean}


def write_studies(root) -> ResultsStore:
    store = ResultsStore(root)
    for columns, trials, kind in ((SEARCH, SEARCH_TRIALS, "search"), (ABLATION, ABLATION_TRIALS, "ablation")):
        for i, (tid, params) in enumerate(trials.items()):
            store.write_trial({"study": columns.study, "trial_id": tid, "kind": kind, "status": "COMPLETE",
                               "seed": params["train.seed"], "val_txt_r1": 10.0 + i, "val_r_mean": 20.0 - i,
                               "started_at": dt.datetime(2024, 1, 1, i, tzinfo=UTC), "params": params}, columns)
            store.write_epoch(columns.study, tid, 1, {"val": {"r_mean": 1.0 + i}, "train": {"loss": 0.5}}, 3.0)
    return store


def expected_params(columns: StudyColumns) -> dict[str, str]:
    return {f"param.{k}": v for k, v in columns.params.items()}


@pytest.fixture()
def root(tmp_path):
    write_studies(tmp_path)
    return tmp_path


@pytest.mark.parametrize("columns, trials", [(SEARCH, SEARCH_TRIALS), (ABLATION, ABLATION_TRIALS)])
def test_pandas_reads_a_study_folder_whole(root, columns, trials):
    frame = pd.read_parquet(root / "trials" / f"study={columns.study}")
    assert set(expected_params(columns)) <= set(frame.columns)
    assert {"schema_version", "objective", "objective_mode", "peak_rss_bytes", "peak_gpu_bytes",
            "resolved_config", "git_dirty", "gpu_name", "gpu_count", "cuda_version"} <= set(frame.columns)
    frame = frame.set_index("trial_id")
    for tid, params in trials.items():
        for key in columns.params:
            value = frame.loc[tid, f"param.{key}"]
            assert (pd.isna(value) if key not in params else value == params[key]), (tid, key)
    assert set(frame["objective"]) == {columns.objective} and set(frame["objective_mode"]) == {columns.objective_mode}
    assert set(frame["schema_version"]) == {"2.1"}


@pytest.mark.parametrize("columns", [SEARCH, ABLATION])
def test_duckdb_reads_a_study_glob_whole_and_typed(root, columns):
    glob = f"{root}/trials/study={columns.study}/*.parquet"
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true)")
    types = dict(zip(rel.columns, (str(t) for t in rel.types)))
    for name, kind in expected_params(columns).items():
        assert types[name] == DUCK[kind], name
    assert types["git_dirty"] == "BOOLEAN" and types["gpu_count"] == "BIGINT" and types["objective"] == "VARCHAR"
    n_set = duckdb.sql(f"SELECT count(\"param.train.epochs\"), count(DISTINCT study) FROM "
                       f"read_parquet('{glob}', hive_partitioning=true)").fetchall()[0]
    assert n_set == (len(SEARCH_TRIALS if columns is SEARCH else ABLATION_TRIALS), 1)
    epochs = duckdb.sql(f"SELECT * FROM read_parquet('{root}/epochs/study={columns.study}/*.parquet', "
                        f"hive_partitioning=true)")
    assert {"epoch", "split", "metric", "value", "seconds", "schema_version"} <= set(epochs.columns)


@pytest.mark.parametrize("columns", [SEARCH, ABLATION])
def test_polars_scans_a_study_glob_whole_and_typed(root, columns):
    frame = pl.scan_parquet(f"{root}/trials/study={columns.study}/*.parquet", hive_partitioning=True).collect()
    for name, kind in expected_params(columns).items():
        assert frame.schema[name] == POLARS[kind], name
    assert frame.schema["started_at"] == pl.Datetime("us", "UTC") and frame.schema["git_dirty"] == pl.Boolean
    ablation_only = frame.filter(pl.col("trial_id") == "contrastive-only-s0")
    if columns is ABLATION:
        assert ablation_only["param.loss.w_triplet"].to_list() == [0.0]
    epochs = pl.scan_parquet(f"{root}/epochs/study={columns.study}/*.parquet", hive_partitioning=True).collect()
    assert epochs.schema["value"] == pl.Float64 and epochs.height == 2 * len(frame)


def test_the_store_reads_every_column_of_every_study(root):
    frame = ResultsStore(root).read_trials()
    assert set(expected_params(SEARCH)) | set(expected_params(ABLATION)) <= set(frame.columns)
    assert sorted(frame["study"].unique()) == ["abl", "srch"]


# ---------------------------------------------------------------------------------------------- schema 1.0

def v1_file(path, trial_id: str, params: dict, gpu_seconds: float | None) -> None:
    """A trials file as harma wrote it under schema 1.0: only the parameters the trial overrode, one
    `peak_memory_bytes`, the version only in the metadata."""
    fields = [pa.field("study", pa.dictionary(pa.int32(), pa.string()), nullable=False),
              pa.field("trial_id", pa.string(), nullable=False), pa.field("kind", pa.string(), nullable=False),
              pa.field("seed", pa.int64()), pa.field("status", pa.string(), nullable=False),
              pa.field("val_r_mean", pa.float64()), pa.field("gpu_seconds", pa.float64()),
              pa.field("peak_memory_bytes", pa.int64()), pa.field("git_commit", pa.string())]
    values = {"study": ["abl"], "trial_id": [trial_id], "kind": ["ablation"], "seed": [0], "status": ["COMPLETE"],
              "val_r_mean": [30.0], "gpu_seconds": [gpu_seconds], "peak_memory_bytes": [1000],
              "git_commit": ["abc"]}
    for key, value in sorted(params.items()):
        kind = {int: pa.int64(), float: pa.float64(), str: pa.string()}[type(value)]
        fields.append(pa.field(f"param.{key}", kind))
        values[f"param.{key}"] = [value]
    schema = pa.schema(fields, metadata={b"harma.schema_version": b"1.0", b"harma.table": b"trials"})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict(values, schema=schema), path)


def v1_epoch_file(path, trial_id: str) -> None:
    schema = pa.schema([pa.field("study", pa.dictionary(pa.int32(), pa.string())), pa.field("trial_id", pa.string()),
                        pa.field("epoch", pa.int64()), pa.field("split", pa.string()),
                        pa.field("metric", pa.string()), pa.field("value", pa.float64()),
                        pa.field("seconds", pa.float64())],
                       metadata={b"harma.schema_version": b"1.0", b"harma.table": b"epochs"})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict({"study": ["abl"], "trial_id": [trial_id], "epoch": [1], "split": ["val"],
                                         "metric": ["r_mean"], "value": [30.0], "seconds": [2.0]}, schema=schema),
                   path)


def write_v1_study(root) -> ResultsStore:
    store = ResultsStore(root)
    v1_file(root / "trials" / "study=abl" / "a-s0.parquet", "a-s0", {"train.seed": 0}, gpu_seconds=0.0)
    v1_file(root / "trials" / "study=abl" / "b-s0.parquet", "b-s0", {"loss.w_triplet": 0.0, "train.seed": 0},
            gpu_seconds=50.0)
    v1_epoch_file(root / "epochs" / "study=abl" / "a-s0-e0001.parquet", "a-s0")
    return store


def test_schema_1_files_read_upgraded(tmp_path):
    store = write_v1_study(tmp_path)
    frame = store.read_trials("abl").set_index("trial_id")
    assert frame["schema_version"].tolist() == ["1.0", "1.0"]
    assert frame["objective"].tolist() == ["val_r_mean"] * 2 and frame["objective_mode"].tolist() == ["max"] * 2
    assert frame.loc["a-s0", "peak_rss_bytes"] == 1000 and pd.isna(frame.loc["a-s0", "peak_gpu_bytes"])
    assert frame.loc["b-s0", "peak_gpu_bytes"] == 1000 and pd.isna(frame.loc["b-s0", "peak_rss_bytes"])
    assert pd.isna(frame.loc["a-s0", "param.loss.w_triplet"]) and frame.loc["b-s0", "param.loss.w_triplet"] == 0.0
    assert "peak_memory_bytes" not in frame.columns and frame["git_commit"].tolist() == ["abc", "abc"]
    epochs = store.read_epochs("abl")
    assert epochs["schema_version"].tolist() == ["1.0"] and epochs["value"].tolist() == [30.0]


def test_conforming_a_schema_1_study_makes_plain_readers_see_it_whole(tmp_path):
    store = write_v1_study(tmp_path)
    columns = StudyColumns("abl", {"loss.w_triplet": "float", "train.seed": "int", "adapter.share": "string"},
                           objective="val_r_mean")
    assert len(store.conform(columns)) == 3 and store.conform(columns) == []
    glob = f"{tmp_path}/trials/study=abl/*.parquet"
    rel = duckdb.sql(f"SELECT trial_id, \"param.loss.w_triplet\", \"param.adapter.share\", peak_gpu_bytes "
                     f"FROM read_parquet('{glob}', hive_partitioning=true) ORDER BY trial_id")
    assert rel.fetchall() == [("a-s0", None, None, None), ("b-s0", 0.0, None, 1000)]
    frame = pl.scan_parquet(glob, hive_partitioning=True).collect()
    assert frame.schema["param.adapter.share"] == pl.String and frame["schema_version"].to_list() == ["1.0", "1.0"]
    assert pd.read_parquet(tmp_path / "epochs" / "study=abl")["schema_version"].tolist() == ["1.0"]


def test_conform_refuses_to_drop_a_value(tmp_path):
    store = write_v1_study(tmp_path)
    from harma.results.schema import RecordError

    with pytest.raises(RecordError, match=r"b-s0.parquet: column param.loss.w_triplet holds values"):
        store.conform(StudyColumns("abl", {"train.seed": "int"}))
