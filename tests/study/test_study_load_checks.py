"""Study-load checks that catch what used to fail every trial: a searched value in the middle of a range, a
pair of searched values, a batch larger than the train split, and a name too long for a file name."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harma.data.split_size import check_batch_fits, train_split_size
from harma.data.synthetic import train_captions
from harma.study import space_check
from harma.study.space_check import EDGE, int_values
from harma.study.model import NAME_MAX
from harma.study.parse import load_study
from study_files import load, load_error


def search(space: dict, base_set: dict | None = None, **extra) -> dict:
    return {"name": "t", "kind": "search", "num_samples": 2,
            "base": {"config": "synthetic-tiny", "set": {"train.epochs": 2, **(base_set or {})}},
            "search": {"space": space}, **extra}


# ------------------------------------------------------------------------------- every value of a range

def test_odd_widths_in_the_middle_of_an_int_range_are_an_error(tmp_path):
    """heads 2: 8 and 32 are fine, but 9, 11, ... would fail every trial that draws them."""
    msg = load_error(search({"adapter.bottleneck": {"type": "int", "low": 8, "high": 32}}, {"adapter.heads": 2}),
                     tmp_path)
    assert "search.space.adapter.bottleneck (value 9)" in msg, msg
    assert "expected a multiple of adapter.heads=2" in msg and "12 of the 25 values checked fail" in msg, msg


def test_an_int_range_whose_every_value_fits_loads(tmp_path):
    study = load(search({"adapter.bottleneck": {"type": "int", "low": 8, "high": 32, "step": 2}},
                        {"adapter.heads": 2}), tmp_path)
    assert study.search.space["adapter.bottleneck"].step == 2


def test_a_middle_choice_is_checked(tmp_path):
    msg = load_error(search({"adapter.bottleneck": {"type": "categorical", "choices": [16, 20, 32]}},
                            {"adapter.heads": 8, "adapter.bishare_width": 8}), tmp_path)
    assert "search.space.adapter.bottleneck (value 20)" in msg and "adapter.heads=8" in msg, msg


def test_a_long_int_range_is_checked_near_both_ends(tmp_path):
    """Over DENSE_LIMIT values: its first and last EDGE values, which hold every remainder modulo 4."""
    space = {"adapter.bottleneck": {"type": "int", "low": 4, "high": 400_000, "step": 2}}
    msg = load_error(search(space, {"adapter.heads": 4, "adapter.bishare_width": 8}), tmp_path)
    assert "search.space.adapter.bottleneck (value 6)" in msg, msg
    space["adapter.bottleneck"]["step"] = 4
    assert load(search(space, {"adapter.heads": 4, "adapter.bishare_width": 8}), tmp_path)


def test_int_values_dense_and_thinned():
    assert int_values(8, 32) == list(range(8, 33))
    assert int_values(0, 100, 10) == list(range(0, 101, 10))
    long = int_values(1, 10**9, 3)
    assert len(long) == 2 * EDGE and long[0] == 1 and long[-1] == 10**9
    for m in (2, 7, 64, EDGE):   # every remainder the full range has
        assert {v % m for v in long} == {(1 + 3 * k) % m for k in range(m)}


# --------------------------------------------------------------------------------------- pairs of keys

def heads_and_width(when: dict | None = None) -> dict:
    width = {"type": "categorical", "choices": [16, 6]}
    if when:
        width["when"] = when
    return {"adapter.heads": {"type": "categorical", "choices": [2, 4]}, "adapter.bottleneck": width}


def test_a_pair_of_values_that_cannot_go_together_is_an_error(tmp_path):
    """Each value is fine with the other key at its base (heads 2, width 16); width 6 with heads 4 is not."""
    msg = load_error(search(heads_and_width(), {"adapter.heads": 2}), tmp_path)
    assert "search.space.adapter.heads (value 4) with search.space.adapter.bottleneck (value 6)" in msg, msg
    assert "add a `when` condition" in msg


def test_a_when_condition_between_the_two_keys_is_respected(tmp_path):
    when = {"key": "adapter.heads", "op": "eq", "value": 2}
    study = load(search(heads_and_width(when), {"adapter.heads": 2}), tmp_path)
    assert list(study.search.space) == ["adapter.heads", "adapter.bottleneck"]


def test_pair_combinations_are_capped():
    from harma.study.model import ParamSpec

    space = {"a.x": ParamSpec("a.x", "int", 0, 10_000, 1), "a.y": ParamSpec("a.y", "int", 0, 10_000, 1)}
    combos = space_check.pair_combos("a.x", "a.y", space)
    assert len(combos) <= space_check.PAIR_LIMIT
    assert {"a.x": 0, "a.y": 10_000} in combos and {"a.x": 10_000, "a.y": 0} in combos


def test_shipped_search_studies_still_load_fast():
    import time

    root = Path(__file__).resolve().parents[2] / "studies"
    start = time.perf_counter()
    for name in ("smoke", "search-rsitmd"):
        load_study(root / f"{name}.yaml")
    assert time.perf_counter() - start < 10   # about 0.1 s; a generous bound for a busy machine


# ------------------------------------------------------------------------------- batch vs the train split

def test_synthetic_train_size_is_known_without_generating(synth_root):
    entries = json.loads((synth_root / "train.json").read_text())
    assert train_captions(120) == len(entries)


def test_base_batch_larger_than_the_synthetic_split(tmp_path):
    msg = load_error(search({"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2}},
                            {"train.batch_size": 1000}), tmp_path)
    assert "base: gives an invalid run config: train.batch_size: expected at most 840" in msg, msg
    assert "data.synthetic_images=240" in msg and "got 1000" in msg, msg


def test_searched_batch_sizes_past_the_split(tmp_path):
    msg = load_error(search({"train.batch_size": {"type": "int", "low": 32, "high": 1024, "step": 32}}), tmp_path)
    assert "search.space.train.batch_size (value 864)" in msg and "expected at most 840" in msg, msg


def test_ddp_workers_share_the_split(tmp_path):
    data = search({"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}, {"train.batch_size": 500},
                  resources={"workers_per_trial": 2})
    msg = load_error(data, tmp_path)
    assert "expected at most 420" in msg and "420 for each of 2 processes" in msg, msg
    data["resources"]["workers_per_trial"] = 1
    assert load(data, tmp_path)


def test_ablation_arm_batch_is_checked(tmp_path):
    data = {"name": "a", "kind": "ablation", "base": {"config": "synthetic-tiny"},
            "arms": {"ok": {}, "big": {"train.batch_size": 2048}}}
    assert "arms.big: gives an invalid run config: train.batch_size" in load_error(data, tmp_path)


def real_data(tmp_path: Path, entries: int | None) -> dict:
    train = tmp_path / "train.json"
    if entries is not None:
        train.write_text(json.dumps([{"caption": "a", "image": "x.png", "image_id": i} for i in range(entries)]))
    return {"data.synthetic_images": 0, "data.image_root": str(tmp_path), "data.train_json": str(train),
            "data.val_json": str(tmp_path / "val.json"), "data.test_json": str(tmp_path / "test.json")}


def test_real_train_split_counts_its_annotation_entries(tmp_path):
    from harma.config import ConfigError, load_config

    cfg = load_config("synthetic-tiny", {**real_data(tmp_path, 10), "train.batch_size": 16})
    assert train_split_size(cfg.data) == 10
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected at most 10 \(the train split .*train\.json "
                                          r"has 10 captions.*got 16"):
        check_batch_fits(cfg)
    check_batch_fits(load_config("synthetic-tiny", {**real_data(tmp_path, 10), "train.batch_size": 10}))


def test_unknown_split_size_leaves_the_check_to_the_trainer(tmp_path):
    from harma.config import load_config

    cfg = load_config("synthetic-tiny", {**real_data(tmp_path, None), "train.batch_size": 4096})
    assert train_split_size(cfg.data) is None
    check_batch_fits(cfg)
    (tmp_path / "train.json").write_text("{not json")
    assert train_split_size(cfg.data) is None


def test_a_frozen_model_trains_nothing_so_any_batch_fits(tmp_path):
    from harma.config import load_config

    check_batch_fits(load_config("synthetic-tiny", {"adapter.towers": "none", "train.batch_size": 10**6}))


# ----------------------------------------------------------------------------------------------- names

def test_a_300_character_name_is_one_error_naming_name(tmp_path):
    msg = load_error(search({"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}) | {"name": "a" * 300},
                     tmp_path)
    assert f": name: expected a name of at most {NAME_MAX} characters" in msg and "got 300 characters" in msg, msg
    assert len(msg) < 400


def test_a_name_of_the_maximum_length_loads(tmp_path):
    data = search({"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}) | {"name": "a" * NAME_MAX}
    assert load(data, tmp_path).name == "a" * NAME_MAX


def test_long_arm_names_are_refused_too(tmp_path):
    data = {"name": "a", "kind": "ablation", "base": {"config": "synthetic-tiny"}, "arms": {"b" * 101: {}}}
    assert f"arms.{'b' * 101}: expected a name of at most {NAME_MAX}" in load_error(data, tmp_path)
