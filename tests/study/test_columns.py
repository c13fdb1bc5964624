"""The results columns a study fixes at load: every key it can set (base.set, train.seed, arms, search space),
typed from the study file's own values; a mixed-type key or an objective without a column is a StudyError."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from harma.study.columns import study_columns
from harma.study.parse import load_study
from harma.errors import StudyError


def test_search_columns_are_every_searched_and_base_key():
    raw = yaml.safe_load(open("studies/smoke.yaml"))
    columns = study_columns(load_study("studies/smoke.yaml"))
    assert set(columns.params) == set(raw["search"]["space"]) | set(raw["base"]["set"]) | {"train.seed"}
    assert columns.params["adapter.bottleneck"] == "int" and columns.params["loss.w_triplet"] == "float"
    assert columns.params["loss.gamma"] == "float" and columns.params["train.epochs"] == "int"
    assert (columns.objective, columns.objective_mode) == ("val_r_mean", "max")


def test_ablation_columns_are_every_arm_key():
    raw = yaml.safe_load(open("studies/ablation-smoke.yaml"))
    columns = study_columns(load_study("studies/ablation-smoke.yaml"))
    arm_keys = {k for arm in raw["arms"].values() for k in arm}
    assert set(columns.params) == arm_keys | set(raw["base"]["set"]) | {"train.seed"}
    assert columns.params["adapter.share"] == "string"


def test_replicate_columns_add_the_source_columns():
    study = load_study("studies/replicate-smoke.yaml")
    columns = study_columns(study, {"adapter.bottleneck": "int", "train.seed": "int"})
    assert columns.params == {"adapter.bottleneck": "int", "train.epochs": "int", "train.seed": "int"}


def test_mixed_types_and_unknown_objectives_are_named(tmp_path):
    study = load_study("studies/ablation-smoke.yaml")
    mixed = dataclasses.replace(study, arms={"a": {"adapter.bottleneck": 64}, "b": {"adapter.bottleneck": "x"}})
    with pytest.raises(StudyError, match="ablation-smoke.yaml: parameter adapter.bottleneck"):
        study_columns(mixed)
    text = open("studies/ablation-smoke.yaml").read() + "objective: {metric: loss}\n"
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(StudyError, match="objective.metric"):
        load_study(tmp_path / "s.yaml")


def test_the_trainer_gets_the_studys_objective_and_no_file_may_override_it(tmp_path):
    text = open("studies/ablation-smoke.yaml").read() + "objective: {metric: txt_r1, mode: min}\n"
    (tmp_path / "s.yaml").write_text(text)
    cfg = load_study(tmp_path / "s.yaml").run_config({})
    assert (cfg.train.objective, cfg.train.objective_mode) == ("txt_r1", "min")
    (tmp_path / "t.yaml").write_text(text.replace("train.epochs: 3", "train.epochs: 3\n    train.objective: img_r1"))
    with pytest.raises(StudyError, match="base.set.train.objective: remove it"):
        load_study(tmp_path / "t.yaml")
