"""A results root holding two studies with different parameters, read whole: `ResultsStore(root).dataset()`
hands pandas, DuckDB and polars every column of every study; `harma results export --all` writes one file
their default calls read whole; the plain readers pointed at the trials folder itself fail loudly (the note
harma writes there for pandas and pyarrow, a schema mismatch for DuckDB and polars) instead of dropping
columns; and a table folder given as the root is refused."""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from harma.cli import main
from harma.errors import ResultsError, ResultsFileError
from harma.results.schema import StudyColumns
from harma.results.store import ResultsStore
from test_readers import ABLATION, SEARCH, v1_file, write_studies

UNION = sorted({f"param.{k}" for c in (SEARCH, ABLATION) for k in c.params})


@pytest.fixture
def root(tmp_path):
    write_studies(tmp_path)
    return tmp_path


def _params(columns) -> list[str]:
    return sorted(c for c in columns if c.startswith("param."))


def test_the_dataset_holds_every_column_of_every_study(root):
    store = ResultsStore(root)
    whole = store.read_trials()
    dataset = store.dataset()
    assert dataset.schema.names == list(whole.columns)
    assert _params(dataset.schema.names) == UNION and len(UNION) == 9
    frame = dataset.to_table().to_pandas().sort_values("trial_id").set_index("trial_id")
    assert len(frame) == 8
    assert frame.loc["trial-0001", "param.loss.gamma"] == 1.5 and frame.loc["trial-0001", "param.loss.margin"] == 0.2
    assert frame.loc["no-block-gate-s0", "param.adapter.block_gate"] == "open"
    assert pd.isna(frame.loc["trial-0001", "param.adapter.block_gate"])
    assert pd.isna(frame.loc["no-block-gate-s0", "param.adapter.bottleneck"])


def test_duckdb_and_polars_read_the_dataset_whole(root):
    dataset = ResultsStore(root).dataset()
    duck = duckdb.sql("SELECT * FROM dataset").df()
    assert duck.shape == (8, len(dataset.schema.names)) and _params(duck.columns) == UNION
    gate = duckdb.sql('SELECT trial_id FROM dataset WHERE "param.adapter.block_gate" = \'open\'').fetchall()
    assert gate == [("no-block-gate-s0",)]
    scanned = pl.scan_pyarrow_dataset(dataset).collect()
    assert scanned.shape == (8, len(dataset.schema.names)) and _params(scanned.columns) == UNION
    assert scanned.filter(pl.col("trial_id") == "trial-0002")["param.adapter.share"].to_list() == ["both"]


def test_the_epochs_dataset_holds_every_study(root):
    table = ResultsStore(root).dataset("epochs").to_table()
    assert table.num_rows == 16 and sorted(set(table["study"].to_pylist())) == ["abl", "srch"]


def test_plain_readers_of_the_trials_folder_fail_instead_of_dropping_columns(root):
    trials = root / "trials"
    with pytest.raises(Exception, match=r"trials/README\.txt"):
        pd.read_parquet(trials)
    with pytest.raises(Exception, match=r"README\.txt"):
        pq.read_table(trials)
    with pytest.raises(duckdb.Error, match="schema mismatch"):
        duckdb.sql(f"SELECT * FROM read_parquet('{trials}/*/*.parquet', hive_partitioning=true)").df()
    with pytest.raises(Exception, match="extra column"):
        pl.scan_parquet(f"{trials}/*/*.parquet", hive_partitioning=True).collect()
    note = (trials / "README.txt").read_text()
    assert 'ResultsStore("<root>").dataset()' in note and "harma results export --all" in note


def test_the_note_comes_only_once_two_studies_differ_in_their_columns(tmp_path):
    """A root whose studies share their columns stays readable whole by any reader; the first trial of a study
    with other columns writes the note."""
    store = ResultsStore(tmp_path)
    same = StudyColumns("same", dict(SEARCH.params), SEARCH.objective, SEARCH.objective_mode)
    for columns in (SEARCH, same):
        store.write_trial({"study": columns.study, "trial_id": "t1", "kind": "search", "status": "COMPLETE",
                           "seed": 1, "params": {"train.seed": 1}}, columns)
    assert not (tmp_path / "trials" / "README.txt").exists() and len(pd.read_parquet(tmp_path / "trials")) == 2
    ResultsStore(tmp_path).write_trial({"study": "abl", "trial_id": "t1", "kind": "ablation", "status": "COMPLETE",
                                        "seed": 0, "params": {"train.seed": 0}}, ABLATION)
    assert (tmp_path / "trials" / "README.txt").exists()


def test_export_all_is_one_file_the_default_calls_read_whole(root, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("export") / "all.parquet"
    assert main(["results", "export", "--all", "--format", "parquet", "--out", str(out), "--results", str(root)]) == 0
    assert capsys.readouterr().out.startswith("wrote 8 rows x ")
    for frame in (pd.read_parquet(out), duckdb.sql(f"SELECT * FROM read_parquet('{out}')").df(),
                  pl.read_parquet(out).to_pandas()):
        assert len(frame) == 8 and _params(frame.columns) == UNION


def test_an_int_and_a_float_column_merge_and_text_is_refused(root):
    store = ResultsStore(root)
    ints = StudyColumns("ints", {"loss.gamma": "int", "train.seed": "int"})
    store.write_trial({"study": "ints", "trial_id": "t1", "kind": "search", "status": "COMPLETE", "seed": 1,
                       "val_r_mean": 3.0, "params": {"loss.gamma": 2, "train.seed": 1}}, ints)
    table = store.dataset().to_table()
    assert str(table.schema.field("param.loss.gamma").type) == "double"
    assert sorted(v for v in table["param.loss.gamma"].to_pylist() if v is not None) == [1.5, 2.0, 2.0]
    text = StudyColumns("text", {"loss.gamma": "string", "train.seed": "int"})
    store.write_trial({"study": "text", "trial_id": "t1", "kind": "search", "status": "COMPLETE", "seed": 1,
                       "params": {"loss.gamma": "high", "train.seed": 1}}, text)
    with pytest.raises(ResultsFileError, match="cannot share one schema.*one study at a time"):
        store.dataset()


def test_a_file_of_an_older_schema_is_named(root):
    v1_file(root / "trials" / "study=old" / "t1.parquet", "t1", {"adapter.bottleneck": 8}, None)
    with pytest.raises(ResultsFileError, match=r"study=old/t1\.parquet: schema 1\.0, not 2\.1; `harma study resume"):
        ResultsStore(root).dataset()


def test_a_table_folder_given_as_the_root_is_refused(root, capsys):
    with pytest.raises(ResultsError, match="holds study= folders itself, so it is a table folder"):
        ResultsStore(root / "trials").read_trials()
    assert main(["results", "show", "srch", "--results", str(root / "trials")]) == 2
    assert capsys.readouterr().err.strip() == (f"harma: error: results root {root / 'trials'}: holds study= "
                                               "folders itself, so it is a table folder (trials or epochs) of a "
                                               "results root; give the folder above it")


def test_no_studies_is_an_empty_dataset_with_the_fixed_columns(tmp_path):
    dataset = ResultsStore(tmp_path).dataset()
    assert dataset.to_table().num_rows == 0 and "trial_id" in dataset.schema.names


def test_an_object_store_root_lists_its_studies_and_refuses_a_table_folder_as_the_store_does(root):
    """One lister (harma.results.root.fs_study_names) serves local and object-store roots alike."""
    import pyarrow.fs as pafs

    from harma.results.root import fs_study_names

    local = pafs.LocalFileSystem()
    assert fs_study_names(local, str(root), "s3://b/results") == ResultsStore(root).studies()
    with pytest.raises(ResultsError, match="s3://b/results/trials: holds study= folders itself"):
        fs_study_names(local, str(root / "trials"), "s3://b/results/trials")
