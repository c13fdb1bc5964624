"""Config: shipped configs load, YAML round trip, dotted overrides, and each validation error names its field."""
from __future__ import annotations

import pytest

from harma.config import (ConfigError, RunConfig, apply_overrides, builtin_names, from_dict, load_config,
                          save_config, to_dict)


def test_shipped_configs_load_with_recipe_values():
    assert set(builtin_names()) >= {"rsitmd-geo", "rsicd-geo", "rsitmd-vit", "rsicd-vit", "synthetic-tiny"}
    geo = load_config("rsitmd-geo")
    assert (geo.optim.lr, geo.train.epochs, geo.model.quick_gelu, geo.train.batch_size) == (4e-6, 80, True, 214)
    assert (geo.optim.beta1, geo.optim.beta2, geo.optim.weight_decay, geo.train.seed) == (0.9, 0.98, 0.04, 3407)
    assert load_config("rsicd-vit").train.epochs == 10 and load_config("rsitmd-vit").train.epochs == 50
    assert load_config("rsicd-vit").optim.lr == 4e-4 and not load_config("rsicd-vit").model.quick_gelu


def test_yaml_round_trip(tmp_path):
    cfg = load_config("rsicd-geo", ["adapter.bottleneck=64", "loss.gamma=1.5"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(str(tmp_path / "c.yaml")) == cfg
    assert not list(tmp_path.glob(".*tmp"))


def test_overrides_parse_types():
    cfg = apply_overrides(RunConfig(), ["adapter.bottleneck=64", "loss.gamma=1.5", "adapter.share=none",
                                        "model.weights=null", "optim.lr=4e-6"])
    assert cfg.adapter.bottleneck == 64 and cfg.loss.gamma == 1.5 and cfg.adapter.share == "none"
    assert cfg.model.weights is None and cfg.optim.lr == 4e-6
    assert apply_overrides(RunConfig(), {"loss.margin": 1}).loss.margin == 1.0


@pytest.mark.parametrize("override, field", [
    ({"adapter.bottleneck": 0}, "adapter.bottleneck"),
    ({"adapter.bottleneck": 100}, "adapter.bottleneck"),   # not a multiple of 8 heads
    ({"adapter.share": "all"}, "adapter.share"),
    ({"adapter.towers": "image"}, "adapter.towers"),
    ({"adapter.block_gate": "closed"}, "adapter.block_gate"),
    ({"loss.gamma": -1}, "loss.gamma"),
    ({"loss.w_contr": 0, "loss.w_triplet": 0}, "loss.w_contr"),
    ({"optim.lr": 0}, "optim.lr"),
    ({"optim.warmup": 1.5}, "optim.warmup"),
    ({"optim.schedule": "step"}, "optim.schedule"),
    ({"train.epochs": 0}, "train.epochs"),
    ({"train.device": "tpu"}, "train.device"),
    ({"train.precision": "fp16"}, "train.precision"),
    ({"data.synthetic_images": -3}, "data.synthetic_images"),
    ({"data.synthetic_images": 10, "data.train_json": "x.json"}, "data.train_json"),
    ({"eval.ties": "random"}, "eval.ties"),
    ({"eval.ties": None}, "eval.ties"),
])
def test_invalid_values_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        apply_overrides(RunConfig(), override)


def test_unknown_keys_list_valid_keys():
    with pytest.raises(ConfigError, match=r"adapter\.bottlenek.*bottleneck"):
        apply_overrides(RunConfig(), {"adapter.bottlenek": 3})
    with pytest.raises(ConfigError, match="valid sections"):
        from_dict({"adaptor": {}})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides(RunConfig(), ["adapter.bottleneck"])
    with pytest.raises(ConfigError, match="not a shipped config"):
        load_config("no-such-config")


def test_to_dict_has_every_section():
    assert set(to_dict(RunConfig())) == {"model", "adapter", "loss", "optim", "data", "train", "eval"}


def test_eval_ties_defaults_to_expected_and_travels_like_any_key(tmp_path):
    assert RunConfig().eval.ties == "expected" and load_config("rsitmd-geo").eval.ties == "expected"
    cfg = load_config("synthetic-tiny", ["eval.ties=pessimistic"])
    assert cfg.eval.ties == "pessimistic"
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(str(tmp_path / "c.yaml")).eval.ties == "pessimistic"
    assert from_dict({"eval": {"ties": "optimistic"}}).eval.ties == "optimistic"
    with pytest.raises(ConfigError, match=r"eval\.ties: expected one of .*expected.*optimistic.*pessimistic"):
        load_config("synthetic-tiny", ["eval.ties=best"])
    with pytest.raises(ConfigError, match=r"unknown config key eval\.tie;.*ties"):
        apply_overrides(RunConfig(), {"eval.tie": "expected"})
