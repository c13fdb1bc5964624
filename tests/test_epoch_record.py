"""EpochRecord: the log/checkpoint layout (unchanged key order, older layouts read back), its flat view against
hand-written keys and values, and `curves` as the flat view's inverse for the epochs table."""
from __future__ import annotations

import json

import pytest

from harma.epoch_record import EpochRecord, best_metric_key, curves, is_loss_key, loss_key, metric_key
from harma.metrics import METRIC_KEYS, REPORTED_KEYS

# The JSON layout of a log.jsonl line (and a checkpoint's history entry) since the first trainer, with the compile
# fields added at its end.
LOG_LAYOUT = ["epoch", "val", "test", "train", "lr", "epoch_seconds", "train_seconds", "images_per_s", "best_epoch",
              "best_val", "best_test", "trainable_params", "total_params", "peak_rss_bytes", "peak_gpu_bytes",
              "compile_seconds", "compile_notes"]


def metrics(base: float) -> dict[str, float]:
    return {k: base + i for i, k in enumerate(REPORTED_KEYS)}     # txt_r1 = base, ..., r_mean_tie_gap = base + 7


def record(**changes) -> EpochRecord:
    fields = dict(epoch=3, val=metrics(10.0), test=metrics(20.0), train={"loss": 1.5, "loss_contr": 1.0,
                  "loss_triplet": 0.5}, lr=2e-4, epoch_seconds=4.0, train_seconds=3.0, images_per_s=80.0,
                  best_epoch=2, best_val=metrics(30.0), best_test=metrics(40.0), trainable_params=7,
                  total_params=70, peak_rss_bytes=1024, peak_gpu_bytes=None, compile_seconds=1.25,
                  compile_notes=None)
    return EpochRecord(**{**fields, **changes})


def test_key_names():
    assert metric_key("val", "r_mean") == "val_r_mean" and best_metric_key("test", "img_r5") == "best_test_img_r5"
    assert loss_key("loss") == "loss" and loss_key("contr") == "loss_contr"
    assert is_loss_key("loss") and is_loss_key("loss_new") and not is_loss_key("lossy") and not is_loss_key("lr")


def test_the_log_layout_is_unchanged_and_reads_back():
    rec = record()
    line = json.dumps(rec.to_dict())
    data = json.loads(line)
    assert list(data) == LOG_LAYOUT
    assert data["train"] == {"loss": 1.5, "loss_contr": 1.0, "loss_triplet": 0.5} and data["peak_gpu_bytes"] is None
    assert EpochRecord.from_dict(data) == rec


def test_an_older_entry_without_peak_memory_reads_back_with_none():
    data = record().to_dict()
    del data["peak_rss_bytes"], data["peak_gpu_bytes"]
    old = EpochRecord.from_dict({**data, "a_key_no_record_knows": 1})
    assert old.peak_rss_bytes is None and old.peak_gpu_bytes is None and old.val == metrics(10.0)


def test_an_older_entry_without_compile_fields_reads_back_as_never_compiled():
    data = record(compile_notes="the train forward runs eager").to_dict()
    assert data["compile_seconds"] == 1.25 and data["compile_notes"] == "the train forward runs eager"
    del data["compile_seconds"], data["compile_notes"]
    old = EpochRecord.from_dict(data)
    assert old.compile_seconds == 0.0 and old.compile_notes is None


def test_improved_is_this_epoch_being_the_best():
    assert not record().improved and record(best_epoch=3).improved


def test_flat_view_by_hand():
    flat = record().flat()
    expected = {"epoch": 3, "loss": 1.5, "loss_contr": 1.0, "loss_triplet": 0.5, "lr": 2e-4, "epoch_seconds": 4.0,
                "compile_seconds": 1.25, "images_per_s": 80.0, "best_epoch": 2, "trainable_params": 7,
                "total_params": 70, "peak_rss_bytes": 1024}
    for i, key in enumerate(REPORTED_KEYS):
        expected[f"val_{key}"], expected[f"test_{key}"] = 10.0 + i, 20.0 + i
    for i, key in enumerate(METRIC_KEYS):                          # no tie gap for the best epoch
        expected[f"best_val_{key}"], expected[f"best_test_{key}"] = 30.0 + i, 40.0 + i
    assert flat == expected
    assert "peak_gpu_bytes" not in flat and "train_seconds" not in flat and "compile_notes" not in flat


def test_curves_are_what_the_flat_view_holds_per_split_whatever_the_loss_terms():
    rec = record(train={"loss": 2.0, "loss_contr": 1.0, "loss_brand_new": 0.75})
    flat = {**rec.flat(), "planned_epochs": 4, "host": "h", "gpu_count": 0, "time_total_s": 9.0}
    got = curves(flat)
    assert got == {"val": rec.val, "test": rec.test,
                   "train": {"loss": 2.0, "loss_contr": 1.0, "loss_brand_new": 0.75, "lr": 2e-4,
                             "images_per_s": 80.0}}


def test_a_record_is_frozen():
    with pytest.raises(AttributeError):
        record().epoch = 4
