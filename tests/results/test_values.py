"""Values are checked where they enter: the writer refuses a trial or epoch holding a value no trial can have (a
recall outside [0, 100] or not finite, negative or non-finite seconds, a negative epoch, count or peak memory, a
non-finite train value), naming the trial, the column and the value, and writes nothing; a file holding one,
written with pyarrow behind harma's back, is refused by the readers naming the file, the column and the value;
two files holding the same trial of a study are refused naming both.  Null stays allowed everywhere."""
from __future__ import annotations

import math
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harma.errors import RecordError, ResultsFileError
from harma.metrics import METRIC_KEYS
from harma.results.store import ResultsStore
from harma.results.schema import StudyColumns
from harma.results.schema import epoch_table, trial_table
from harma.results.values import RECALL_COLUMNS

COLUMNS = StudyColumns("s", {"adapter.bottleneck": "int"})
RECALL = "a recall in [0, 100]"
SECONDS = "finite seconds >= 0"
COUNT = "a whole number >= 0"
FINITE = "a finite number"

# (column, impossible value, how the message writes it, what was expected)
BAD_TRIAL_VALUES = [
    ("val_r_mean", math.inf, "inf", RECALL),
    ("val_txt_r1", math.nan, "nan", RECALL),
    ("test_img_r10", -5.0, "-5.0", RECALL),
    ("test_r_mean", 100.01, "100.01", RECALL),
    ("val_img_r1", -math.inf, "-inf", RECALL),
    ("wall_seconds", -100.0, "-100.0", SECONDS),
    ("wall_seconds", math.inf, "inf", SECONDS),
    ("gpu_seconds", math.nan, "nan", SECONDS),
    ("gpu_seconds", -1.0, "-1.0", SECONDS),
    ("stop_epoch", -1, "-1", COUNT),
    ("best_epoch", -2, "-2", COUNT),
    ("trainable_params", -1, "-1", COUNT),
    ("total_params", -157, "-157", COUNT),
    ("peak_rss_bytes", -1, "-1", COUNT),
    ("peak_gpu_bytes", -4096, "-4096", COUNT),
]
# (split, metric, impossible value, how the message writes it, what was expected)
BAD_EPOCH_VALUES = [
    ("val", "r_mean", 100.5, "100.5", RECALL),
    ("val", "txt_r1", math.nan, "nan", RECALL),
    ("test", "img_r1", math.inf, "inf", RECALL),
    ("test", "r_mean", -0.5, "-0.5", RECALL),
    ("val", "r_mean_tie_gap", 101.0, "101.0", RECALL),
    ("test", "r_mean_tie_gap", -1.0, "-1.0", RECALL),
    ("train", "loss", math.nan, "nan", FINITE),
    ("train", "loss", -math.inf, "-inf", FINITE),
]


def record(tid: str = "trial-0003", **values) -> dict:
    rec = {"study": "s", "trial_id": tid, "kind": "search", "status": "COMPLETE", "stop_epoch": 4, "best_epoch": 3,
           "trainable_params": 10, "total_params": 20, "wall_seconds": 60.0, "gpu_seconds": 60.0,
           "peak_rss_bytes": 2**20, "peak_gpu_bytes": 2**30, "params": {"adapter.bottleneck": 16}}
    rec.update({c: 40.0 for c in RECALL_COLUMNS})
    rec.update(values)
    return rec


def good_study(root) -> ResultsStore:
    store = ResultsStore(root)
    for i in range(4):
        store.write_trial(record(f"trial-{i:04d}"), COLUMNS)
        store.write_epoch("s", f"trial-{i:04d}", 1, {"val": {"r_mean": 30.0, "r_mean_tie_gap": 0.0},
                                                      "train": {"loss": 0.7}}, 12.0)
    return store


def with_value(table: pa.Table, column: str, value) -> pa.Table:
    """`table` with every row of `column` set to `value` (same type), as a writer other than harma's could."""
    field = table.schema.field(column)
    return table.set_column(table.schema.get_field_index(column), field,
                            pa.array([value] * table.num_rows, field.type))


# ------------------------------------------------------------------------------------------------- writer

@pytest.mark.parametrize("column, value, shown, expected", BAD_TRIAL_VALUES)
def test_the_writer_refuses_an_impossible_trial_value(tmp_path, column, value, shown, expected):
    with pytest.raises(RecordError) as err:
        trial_table(record(**{column: value}), COLUMNS)
    assert str(err.value) == (f"trial record 'trial-0003': column {column} holds {shown}; expected {expected} "
                              "or null")
    store = ResultsStore(tmp_path)
    with pytest.raises(RecordError):
        store.write_trial(record(**{column: value}), COLUMNS)
    assert not (tmp_path / "trials" / "study=s" / "trial-0003.parquet").exists()


def test_the_writer_takes_the_ends_of_every_range_and_null(tmp_path):
    ends = record(**{c: (0.0 if i % 2 else 100.0) for i, c in enumerate(RECALL_COLUMNS)}, wall_seconds=0.0,
                  gpu_seconds=0.0, stop_epoch=0, best_epoch=0, trainable_params=0, total_params=0,
                  peak_rss_bytes=0, peak_gpu_bytes=0)
    assert trial_table(ends, COLUMNS).num_rows == 1
    unset = {"study": "s", "trial_id": "r", "kind": "search", "status": "RUNNING",
             **{c: None for c in RECALL_COLUMNS}, "wall_seconds": None, "stop_epoch": None}
    assert trial_table(unset, COLUMNS)["val_r_mean"].null_count == 1


@pytest.mark.parametrize("split, metric, value, shown, expected", BAD_EPOCH_VALUES)
def test_the_writer_refuses_an_impossible_epoch_value(tmp_path, split, metric, value, shown, expected):
    metrics = {"val": {"r_mean": 30.0}, "train": {"loss": 0.7}}
    metrics.setdefault(split, {})[metric] = value
    with pytest.raises(RecordError) as err:
        epoch_table("s", "trial-0003", 2, metrics, 12.0)
    assert str(err.value) == (f"epoch report trial-0003 e2: column value holds {shown} for {split} {metric}; "
                              f"expected {expected} or null")
    with pytest.raises(RecordError):
        ResultsStore(tmp_path).write_epoch("s", "trial-0003", 2, metrics, 12.0)
    assert not (tmp_path / "epochs").exists()


@pytest.mark.parametrize("seconds, shown", [(-1.0, "-1.0"), (math.inf, "inf"), (math.nan, "nan")])
def test_the_writer_refuses_impossible_epoch_seconds(seconds, shown):
    with pytest.raises(RecordError, match=rf"^epoch report t e1: column seconds holds {shown}; expected finite "
                                          r"seconds >= 0 or null$"):
        epoch_table("s", "t", 1, {"val": {"r_mean": 1.0}}, seconds)


def test_train_values_may_be_any_finite_number_and_recalls_null():
    table = epoch_table("s", "t", 1, {"val": {m: None for m in METRIC_KEYS},
                                      "train": {"loss": -12.5, "lr": 1e6}}, None)
    assert table.num_rows == len(METRIC_KEYS) + 2 and table["value"].null_count == len(METRIC_KEYS)


# ------------------------------------------------------------------------------------------------- readers

@pytest.mark.parametrize("column, value, shown, expected", BAD_TRIAL_VALUES)
def test_a_trials_file_holding_an_impossible_value_is_refused_naming_it(tmp_path, column, value, shown, expected):
    store = good_study(tmp_path)
    path = tmp_path / "trials" / "study=s" / "trial-0003.parquet"
    pq.write_table(with_value(pq.read_table(path), column, value), path)
    with pytest.raises(ResultsFileError) as err:
        store.read_trials("s")
    assert str(err.value) == f"results file {path}: column {column} holds {shown}; expected {expected} or null"
    with pytest.raises(ResultsFileError, match=str(path)):
        store.read_trials()            # every study


@pytest.mark.parametrize("split, metric, value, shown, expected", BAD_EPOCH_VALUES)
def test_an_epochs_file_holding_an_impossible_value_is_refused_naming_it(tmp_path, split, metric, value, shown,
                                                                          expected):
    store = good_study(tmp_path)
    path = tmp_path / "epochs" / "study=s" / "trial-0002-e0001.parquet"
    table = epoch_table("s", "trial-0002", 1, {"val": {"r_mean": 30.0}, "train": {"loss": 0.7}}, 12.0)
    table = pa.concat_tables([table, pa.Table.from_pylist(
        [{**table.slice(0, 1).to_pylist()[0], "split": split, "metric": metric, "value": value}],
        schema=table.schema)])
    pq.write_table(table, path)
    with pytest.raises(ResultsFileError) as err:
        store.read_epochs("s")
    assert str(err.value) == (f"results file {path}: column value holds {shown} for {split} {metric}; expected "
                              f"{expected} or null")


@pytest.mark.parametrize("column, value, shown, expected", [("seconds", -3.0, "-3.0", SECONDS),
                                                            ("seconds", math.inf, "inf", SECONDS),
                                                            ("epoch", -1, "-1", COUNT)])
def test_an_epochs_file_with_impossible_seconds_or_epoch_is_refused(tmp_path, column, value, shown, expected):
    store = good_study(tmp_path)
    path = tmp_path / "epochs" / "study=s" / "trial-0001-e0001.parquet"
    pq.write_table(with_value(pq.read_table(path), column, value), path)
    with pytest.raises(ResultsFileError) as err:
        store.read_epochs()
    assert str(err.value) == f"results file {path}: column {column} holds {shown}; expected {expected} or null"


def test_the_first_bad_file_in_name_order_and_its_first_bad_column_are_named(tmp_path):
    store = good_study(tmp_path)
    folder = tmp_path / "trials" / "study=s"
    late = folder / "trial-0003.parquet"
    pq.write_table(with_value(pq.read_table(late), "val_r_mean", math.inf), late)
    early = folder / "trial-0001.parquet"
    table = with_value(with_value(pq.read_table(early), "wall_seconds", -100.0), "test_r_mean", -5.0)
    pq.write_table(with_value(table, "val_r_mean", math.inf), early)
    with pytest.raises(ResultsFileError) as err:
        store.read_trials("s")
    assert str(err.value) == (f"results file {early}: column val_r_mean holds inf; expected a recall in [0, 100] "
                              "or null")


def test_a_column_of_the_wrong_type_is_refused_naming_it(tmp_path):
    store = good_study(tmp_path)
    path = tmp_path / "trials" / "study=s" / "trial-0002.parquet"
    table = pq.read_table(path)
    index = table.schema.get_field_index("stop_epoch")
    pq.write_table(table.set_column(index, "stop_epoch", pa.array(["four"])), path)
    with pytest.raises(ResultsFileError) as err:
        store.read_trials("s")
    assert str(err.value) == f"results file {path}: column stop_epoch is of type string; expected int64"


def test_null_values_read_back(tmp_path):
    store = good_study(tmp_path)
    store.write_trial({"study": "s", "trial_id": "trial-0004", "kind": "search", "status": "RUNNING"}, COLUMNS)
    trials = store.read_trials("s")
    assert len(trials) == 5 and trials["val_r_mean"].isna().sum() == 1


# ---------------------------------------------------------------------------------------- one id, one row

def test_two_files_holding_one_trial_are_refused_naming_both(tmp_path):
    store = good_study(tmp_path)
    folder = tmp_path / "trials" / "study=s"
    stray = folder / "trial-0001-copy.parquet"
    shutil.copy(folder / "trial-0001.parquet", stray)
    with pytest.raises(ResultsFileError) as err:
        store.read_trials("s")
    own = folder / "trial-0001.parquet"
    assert str(err.value) == (f"results files {stray} and {own} both hold trial trial-0001 of study s, which has "
                              f"one row: move the stray file ({stray}, whose name is not trial-0001.parquet) out "
                              "of the study's trials folder")
    stray.unlink()
    assert store.read_trials("s")["trial_id"].tolist() == [f"trial-{i:04d}" for i in range(4)]


def test_a_misnamed_file_with_a_unique_trial_is_read(tmp_path):
    store = good_study(tmp_path)
    folder = tmp_path / "trials" / "study=s"
    (folder / "trial-0002.parquet").rename(folder / "renamed.parquet")
    assert sorted(store.read_trials("s")["trial_id"]) == [f"trial-{i:04d}" for i in range(4)]


def test_the_same_trial_id_in_two_studies_is_two_trials(tmp_path):
    store = good_study(tmp_path)
    store.write_trial({**record("trial-0001"), "study": "other"}, StudyColumns("other", COLUMNS.params))
    assert len(store.read_trials()) == 5
