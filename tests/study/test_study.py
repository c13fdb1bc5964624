"""Study files: every error path names its key; the shipped studies load; ablation and replicate trials."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import yaml

from harma import config as hconfig
from harma.config import RunConfig
from harma.study.model import Condition, ParamSpec, Study, dependency_order
from harma.study.parse import load_study, parse_study
from harma.errors import StudyError

STUDIES = Path(__file__).resolve().parents[2] / "studies"
SHIPPED = ["smoke", "search-rsitmd", "ablation-rsitmd", "ablation-smoke", "replicate-smoke", "gpu-smoke"]

# Placeholders used only when the lead's shipped configs are absent (written to tmp files, never harma/configs).
PLACEHOLDERS = {
    "synthetic-tiny": {"model": {"arch": "tiny"}, "adapter": {"bottleneck": 16, "heads": 2, "bishare_width": 8},
                       "data": {"synthetic_images": 160}, "train": {"epochs": 3, "device": "cpu"}},
    "rsitmd-geo": {"model": {"arch": "ViT-B-32", "quick_gelu": True}, "train": {"epochs": 80}},
}


def base_ref(name: str, tmp_path: Path) -> str:
    """The shipped config name, or a tmp placeholder file when it is not shipped yet."""
    if name in hconfig.builtin_names():
        return name
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(PLACEHOLDERS[name]))
    return str(path)


def shipped_study_path(name: str, tmp_path: Path) -> Path:
    path = STUDIES / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    ref = base_ref(data["base"]["config"], tmp_path)
    if ref == data["base"]["config"]:
        return path
    data["base"]["config"] = ref
    out = tmp_path / path.name
    out.write_text(yaml.safe_dump(data))
    return out


@pytest.fixture
def tiny(tmp_path) -> str:
    return base_ref("synthetic-tiny", tmp_path)


def search_study(tiny: str) -> dict:
    return {
        "name": "t", "kind": "search",
        "base": {"config": tiny, "set": {"train.epochs": 4}},
        "resources": {"gpus_per_trial": 0, "workers_per_trial": 1},
        "num_samples": 3,
        "scheduler": {"type": "asha", "max_epochs": 4, "grace_period": 1, "reduction_factor": 2},
        "search": {"space": {
            "optim.lr": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
            "loss.w_triplet": {"type": "categorical", "choices": [0.0, 1.0]},
            "loss.gamma": {"type": "float", "low": 0.0, "high": 4.0,
                           "when": {"key": "loss.w_triplet", "op": "gt", "value": 0}},
        }},
    }


def ablation_study(tiny: str) -> dict:
    return {
        "name": "a", "kind": "ablation", "base": {"config": tiny}, "seeds": [7, 8],
        "arms": {"harma": {}, "adapter-only": {"adapter.share": "none"}},
    }


def replicate_study(tiny: str) -> dict:
    return {"name": "r", "kind": "replicate", "base": {"config": tiny},
            "replicate": {"from": "smoke", "top_k": 2, "seeds": [1, 2]}}


def write_and_load(data: dict, tmp_path: Path) -> Study:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_study(path)


def set_path(data: dict, dotted: list, value) -> dict:
    data = copy.deepcopy(data)
    node = data
    for k in dotted[:-1]:
        node = node[k]
    if value is DELETE:
        del node[dotted[-1]]
    else:
        node[dotted[-1]] = value
    return data


DELETE = object()
SPACE = ["search", "space"]

# (where in the search study, new value, text the error must contain: the key path)
SEARCH_ERRORS = [
    (["nmae"], "x", "unknown key nmae"),
    (["name"], "bad name!", "name:"),
    (["name"], "..", "name:"),
    (["name"], 3, "name:"),
    (["kind"], "grid", "kind:"),
    (["kind"], DELETE, "kind: required"),
    (["base"], DELETE, "base: required"),
    (["base", "confg"], "x", "unknown key base.confg"),
    (["base", "config"], "no-such-config", "base:"),
    (["base", "set"], {"adapter.bottlenek": 8}, "base.set.adapter.bottlenek"),
    (["base", "set"], {"adapter.bottleneck": 7}, "adapter.bottleneck"),
    (["base", "set"], ["a"], "base.set:"),
    (["objective"], {"metric": "r_mean", "mode": "up"}, "objective.mode"),
    (["objective"], {"split": "train"}, "objective.split"),
    (["objective"], {"metrc": "r_mean"}, "unknown key objective.metrc"),
    (["resources", "gpus_per_trial"], -1, "resources.gpus_per_trial"),
    (["resources", "gpus_per_trial"], "two", "resources.gpus_per_trial"),
    (["resources", "workers_per_trial"], 0, "resources.workers_per_trial"),
    (["resources", "workers_per_trial"], 1.5, "resources.workers_per_trial"),
    (["resources", "gpus_per_trial"], 2, "resources.gpus_per_trial: expected at most 1 for a single-worker"),
    (["resources"], {"gpus_per_trial": 1, "workers_per_trial": 2}, "NCCL cannot run two ranks on one GPU"),
    (["resources"], {"gpus_per_trial": 4, "workers_per_trial": 2}, "would get 2 GPU each"),
    (["resources", "cpus_per_worker"], 0, "resources.cpus_per_worker"),
    (["resources", "custom"], {"trial_slot": -1}, "resources.custom.trial_slot"),
    (["resources", "custom"], [1], "resources.custom"),
    (["resources", "gpu"], 1, "unknown key resources.gpu"),
    (["num_samples"], DELETE, "num_samples: required"),
    (["num_samples"], 0, "num_samples"),
    (["num_samples"], "ten", "num_samples"),
    (["max_concurrent"], 0, "max_concurrent"),
    (["seeds"], [], "seeds"),
    (["seeds"], [1, "two"], "seeds"),
    (["seeds"], [1, 1], "seeds"),
    (["seeds"], 5, "seeds"),
    (["scheduler", "type"], "pbt", "scheduler.type"),
    (["scheduler", "grace_period"], 0, "scheduler.grace_period"),
    (["scheduler", "grace_period"], 5, "scheduler.grace_period"),
    (["scheduler", "grace_perod"], 1, "unknown key scheduler.grace_perod"),
    (["scheduler", "reduction_factor"], 1, "scheduler.reduction_factor"),
    (["scheduler", "max_epochs"], 9, "scheduler.max_epochs"),
    (["scheduler"], {"type": "none", "grace_period": 1}, "scheduler.grace_period"),
    (["storage"], "ftp://host/x", "storage"),
    (["storage"], "", "storage"),
    (["storage"], "s3://bucket/x", "optuna_storage"),
    (["optuna_storage"], "redis://x", "optuna_storage"),
    (["optuna_storage"], "journal:", "optuna_storage"),
    (["optuna_storage"], "sqlite://relative.db", "optuna_storage"),
    (["search"], DELETE, "search: required"),
    (SPACE, {}, "search.space"),
    (["search", "sampler"], {"seed": "x"}, "search.sampler.seed"),
    (["search", "sampler"], {"n_startup": 3}, "unknown key search.sampler.n_startup"),
    (["search", "spaec"], {}, "unknown key search.spaec"),
    (SPACE + ["optim.lrr"], {"type": "float", "low": 0.1, "high": 1.0}, "search.space.optim.lrr"),
    (SPACE + ["optim.lr"], {"type": "float", "low": 0.1, "high": 0.01}, "search.space.optim.lr.low"),
    (SPACE + ["optim.lr"], {"type": "float", "low": 0.1, "high": 0.1}, "search.space.optim.lr.low"),
    (SPACE + ["optim.lr"], {"type": "float", "low": 0.0, "high": 0.1, "log": True}, "search.space.optim.lr.low"),
    (SPACE + ["optim.lr"], {"type": "float", "low": 0.1, "high": 1.0, "log": "yes"}, "search.space.optim.lr.log"),
    (SPACE + ["optim.lr"], {"type": "float", "high": 1.0}, "search.space.optim.lr.low"),
    (SPACE + ["optim.lr"], {"type": "float", "low": "a", "high": 1.0}, "search.space.optim.lr.low"),
    (SPACE + ["optim.lr"], {"type": "float", "low": 0.1, "high": 1.0, "step": 0.1},
     "unknown key search.space.optim.lr.step"),
    (SPACE + ["optim.lr"], {"type": "normal", "low": 0.1, "high": 1.0}, "search.space.optim.lr.type"),
    (SPACE + ["optim.lr"], {"low": 0.1, "high": 1.0}, "search.space.optim.lr.type"),
    (SPACE + ["optim.lr"], 0.1, "search.space.optim.lr"),
    (SPACE + ["optim.lr"], {"type": "float", "low": -1.0, "high": 1.0}, "search.space.optim.lr"),  # lr <= 0
    (SPACE + ["adapter.bottleneck"], {"type": "int", "low": 8, "high": 4}, "search.space.adapter.bottleneck.low"),
    (SPACE + ["adapter.bottleneck"], {"type": "int", "low": 8.0, "high": 16}, "search.space.adapter.bottleneck.low"),
    (SPACE + ["adapter.bottleneck"], {"type": "int", "low": 8, "high": 16, "step": 3},
     "search.space.adapter.bottleneck.high"),
    (SPACE + ["adapter.bottleneck"], {"type": "int", "low": 8, "high": 16, "step": 2, "log": True},
     "search.space.adapter.bottleneck.step"),
    (SPACE + ["adapter.bottleneck"], {"type": "int", "low": 0, "high": 16, "log": True},
     "search.space.adapter.bottleneck.low"),
    (SPACE + ["adapter.bottleneck"], {"type": "categorical", "choices": []}, "search.space.adapter.bottleneck.choices"),
    (SPACE + ["adapter.bottleneck"], {"type": "categorical", "choices": [8, 8]},
     "search.space.adapter.bottleneck.choices"),
    (SPACE + ["adapter.bottleneck"], {"type": "categorical", "choices": [[8]]},
     "search.space.adapter.bottleneck.choices"),
    (SPACE + ["adapter.bottleneck"], {"type": "categorical", "choices": [8, 7]},
     "search.space.adapter.bottleneck"),   # 7 is not a multiple of adapter.heads
    (SPACE + ["train.epochs"], {"type": "int", "low": 2, "high": 4}, "search.space.train.epochs"),
    (SPACE + ["loss.gamma", "when"], {"key": "loss.nope", "op": "gt", "value": 0}, "search.space.loss.gamma.when.key"),
    (SPACE + ["loss.gamma", "when"], {"key": "loss.gamma", "op": "gt", "value": 0}, "search.space.loss.gamma.when.key"),
    (SPACE + ["loss.gamma", "when"], {"key": "loss.w_triplet", "op": "gte", "value": 0},
     "search.space.loss.gamma.when.op"),
    (SPACE + ["loss.gamma", "when"], {"key": "loss.w_triplet", "op": "gt", "value": "zero"},
     "search.space.loss.gamma.when.value"),
    (SPACE + ["loss.gamma", "when"], {"key": "loss.w_triplet", "op": "gt"}, "search.space.loss.gamma.when.value"),
    (SPACE + ["loss.gamma", "when"], {"key": "loss.w_triplet", "op": "gt", "value": 0, "x": 1},
     "unknown key search.space.loss.gamma.when.x"),
    (SPACE + ["loss.gamma", "when"], {"key": "adapter.share", "op": "gt", "value": 0},
     "search.space.loss.gamma.when.key"),      # ordering against a string key
    (SPACE + ["loss.gamma", "when"], "loss.w_triplet > 0", "search.space.loss.gamma.when"),
    (["arms"], {"x": {}}, "arms: only allowed for kind ablation"),
    (["replicate"], {"from": "smoke"}, "replicate: only allowed for kind replicate"),
]


@pytest.mark.parametrize("where,value,needle", SEARCH_ERRORS,
                         ids=[f"{'.'.join(w)}={v!r}"[:60] for w, v, _ in SEARCH_ERRORS])
def test_search_study_errors_name_the_key(where, value, needle, tiny, tmp_path):
    msg = load_error(set_path(search_study(tiny), where, value), tmp_path)
    assert needle in msg, msg
    assert "study.yaml" in msg, msg     # the file is named too


def load_error(data, tmp_path) -> str:
    """The StudyError message loading `data` gives (the test fails if it loads)."""
    with pytest.raises(StudyError) as err:
        write_and_load(data, tmp_path)
    return str(err.value)


def test_unknown_key_lists_valid_ones(tiny, tmp_path):
    with pytest.raises(StudyError, match="valid keys: .*max_concurrent"):
        write_and_load(set_path(search_study(tiny), ["nmae"], "x"), tmp_path)
    with pytest.raises(StudyError, match="valid keys of scheduler: type, max_epochs, grace_period"):
        write_and_load(set_path(search_study(tiny), ["scheduler", "grace"], 1), tmp_path)


def test_condition_cycle_is_an_error(tiny, tmp_path):
    data = search_study(tiny)
    data["search"]["space"]["loss.w_triplet"]["when"] = {"key": "loss.gamma", "op": "gt", "value": 0}
    with pytest.raises(StudyError, match=r"search\.space\..*cycle"):
        write_and_load(data, tmp_path)


def test_condition_may_name_a_base_key(tiny, tmp_path):
    data = search_study(tiny)
    data["search"]["space"]["loss.margin"] = {"type": "float", "low": 0.1, "high": 0.3,
                                              "when": {"key": "adapter.share", "op": "ne", "value": "none"}}
    study = write_and_load(data, tmp_path)
    assert study.search.space["loss.margin"].when == Condition("adapter.share", "ne", "none")


ABLATION_ERRORS = [
    (["arms"], DELETE, "arms: required"),
    (["arms"], {}, "arms"),
    (["arms", "bad arm"], {}, "arms.bad arm"),
    (["arms", "adapter-only"], {"adapter.shaer": "none"}, "arms.adapter-only.adapter.shaer"),
    (["arms", "adapter-only"], {"adapter.share": "sometimes"}, "arms.adapter-only"),
    (["arms", "adapter-only"], {"train.seed": 1}, "arms.adapter-only.train.seed"),
    (["arms", "adapter-only"], ["adapter.share=none"], "arms.adapter-only"),
    (["arms", "no-loss"], {"loss.w_contr": 0, "loss.w_triplet": 0}, "arms.no-loss"),
    (["num_samples"], 4, "num_samples: only allowed for kind search"),
    (["search"], {"space": {}}, "search: only allowed for kind search"),
    (["scheduler"], {"type": "asha", "max_epochs": 3}, "scheduler.type"),
    (["seeds"], [], "seeds"),
]


@pytest.mark.parametrize("where,value,needle", ABLATION_ERRORS,
                         ids=[f"{'.'.join(w)}={v!r}"[:60] for w, v, _ in ABLATION_ERRORS])
def test_ablation_study_errors_name_the_key(where, value, needle, tiny, tmp_path):
    msg = load_error(set_path(ablation_study(tiny), where, value), tmp_path)
    assert needle in msg, msg


REPLICATE_ERRORS = [
    (["replicate"], DELETE, "replicate: required"),
    (["replicate", "from"], DELETE, "replicate.from: required"),
    (["replicate", "from"], "no/slash", "replicate.from"),
    (["replicate", "top_k"], 0, "replicate.top_k"),
    (["replicate", "seeds"], [], "replicate.seeds"),
    (["replicate", "seed"], [1], "unknown key replicate.seed"),
    (["seeds"], [5], "replicate.seeds"),          # given twice
    (["arms"], {"x": {}}, "arms: only allowed for kind ablation"),
]


@pytest.mark.parametrize("where,value,needle", REPLICATE_ERRORS,
                         ids=[f"{'.'.join(w)}={v!r}"[:60] for w, v, _ in REPLICATE_ERRORS])
def test_replicate_study_errors_name_the_key(where, value, needle, tiny, tmp_path):
    msg = load_error(set_path(replicate_study(tiny), where, value), tmp_path)
    assert needle in msg, msg


def test_file_level_errors(tmp_path):
    with pytest.raises(StudyError, match="not found"):
        load_study(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(StudyError, match="bad.yaml: not valid YAML"):
        load_study(bad)
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: a\nname: b\n")
    with pytest.raises(StudyError, match="duplicate key 'name'"):
        load_study(dup)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n")
    with pytest.raises(StudyError, match="list.yaml: study: expected a mapping"):
        load_study(top)


def test_yaml_exponent_without_dot_is_a_float(tiny, tmp_path):
    text = yaml.safe_dump(search_study(tiny), sort_keys=False)
    text = text.replace("low: 1.0e-05", "low: 1e-5")
    assert "low: 1e-5" in text
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert load_study(path).search.space["optim.lr"].low == pytest.approx(1e-5)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_studies_load(name, tmp_path):
    study = load_study(shipped_study_path(name, tmp_path))
    assert study.name == name
    assert isinstance(study.run_config({}), RunConfig)
    if study.kind == "search":
        assert study.num_samples >= 1 and study.search.space
        assert study.scheduler.type == "asha"
        assert study.run_config({}).train.epochs == study.scheduler.max_epochs
        assert study.optuna_storage_url().startswith("sqlite:///")
    if study.kind == "ablation":
        assert "harma" in study.arms
        for arm, seed, overrides in study.trial_overrides():
            cfg = study.run_config(overrides)
            assert cfg.train.seed == seed


def test_smoke_study_is_the_cpu_demo(tmp_path):
    study = load_study(shipped_study_path("smoke", tmp_path))
    assert study.kind == "search" and study.num_samples == 10 and study.max_concurrent == 2
    assert study.resources.gpus_per_trial == 0 and study.total_gpus_per_trial == 0
    assert study.resources.workers_per_trial == 1 and study.resources.custom == {"trial_slot": 1.0}
    assert (study.scheduler.max_epochs, study.scheduler.grace_period, study.scheduler.reduction_factor) == (4, 1, 2)
    space = study.search.space
    assert {"adapter.bottleneck", "adapter.gate_init", "adapter.block_gate_init", "loss.margin", "loss.gamma",
            "loss.w_contr", "loss.w_triplet", "loss.w_affil", "optim.lr", "optim.weight_decay"} <= set(space)
    assert space["loss.gamma"].when == Condition("loss.w_triplet", "gt", 0)
    assert space["optim.lr"].log and space["optim.lr"].low <= 1e-5 and space["optim.lr"].high >= 3e-2
    order = list(space)
    assert order.index("loss.w_triplet") < order.index("loss.gamma")
    assert study.run_config({}).train.device == "cpu"


def test_real_scale_studies(tmp_path):
    search = load_study(shipped_study_path("search-rsitmd", tmp_path))
    assert search.total_gpus_per_trial == 2 and search.resources.workers_per_trial == 2
    assert search.resources.gpus_per_worker == 1
    assert search.num_samples == 48
    sch = search.scheduler
    assert (sch.max_epochs, sch.grace_period, sch.reduction_factor) == (80, 10, 3)
    cfg = search.run_config({})
    assert cfg.model.weights == "checkpoints/RS5M_ViT-B-32_RET-2.pt" and cfg.adapter.heads == 8
    assert search.search.space["adapter.bottleneck"].choices == (64, 128, 256)
    lr = search.search.space["optim.lr"]
    assert lr.log and lr.low <= 4e-6 <= lr.high
    abl = load_study(shipped_study_path("ablation-rsitmd", tmp_path))
    assert abl.seeds == (3407, 1, 2) and abl.scheduler.type == "none"
    assert len(abl.arms) == 8 and len(abl.trial_overrides()) == 24
    configs = {arm: abl.run_config(ov) for arm, seed, ov in abl.trial_overrides() if seed == 1}
    assert configs["adapter-only"].adapter.share == "none"
    assert configs["bishare-both"].adapter.share == "both"
    assert configs["no-block-gate"].adapter.block_gate == "open"
    assert configs["contrastive-only"].loss.w_triplet == 0
    assert configs["triplet-only"].loss.w_contr == 0
    assert configs["contr-triplet-affil"].loss.w_affil == 1.0
    assert configs["frozen"].adapter.towers == "none"
    assert configs["harma"] == abl.run_config({"train.seed": 1})


def test_ablation_trial_overrides(tiny, tmp_path):
    study = write_and_load(ablation_study(tiny), tmp_path)
    trials = study.trial_overrides()
    assert trials == [("harma", 7, {"train.seed": 7}), ("adapter-only", 7, {"adapter.share": "none", "train.seed": 7}),
                      ("harma", 8, {"train.seed": 8}), ("adapter-only", 8, {"adapter.share": "none", "train.seed": 8})]
    assert study.run_config(trials[1][2]).adapter.share == "none"
    assert study.run_config({}).train.seed == 7          # seeds[0] by default


def test_replicate_overrides(tiny, tmp_path):
    study = write_and_load(replicate_study(tiny), tmp_path)
    assert study.replicate.source == "smoke" and study.replicate.top_k == 2 and study.seeds == (1, 2)
    cands = [("t0", {"optim.lr": 1e-3}), ("t1", {"optim.lr": 2e-3}), ("t2", {"optim.lr": 3e-3})]
    runs = study.replicate_overrides(cands)
    assert [(label, seed) for label, seed, _ in runs] == [("t0", 1), ("t1", 1), ("t0", 2), ("t1", 2)]
    assert runs[0][2] == {"optim.lr": 1e-3, "train.seed": 1}
    with pytest.raises(StudyError, match="kind"):
        study.trial_overrides()


def test_replicate_seeds_may_be_top_level(tiny, tmp_path):
    data = replicate_study(tiny)
    del data["replicate"]["seeds"]
    data["seeds"] = [4, 5]
    assert write_and_load(data, tmp_path).seeds == (4, 5)


def test_run_config_layers_base_set_seed_and_overrides(tiny, tmp_path):
    data = search_study(tiny)
    data["base"]["set"]["optim.weight_decay"] = 0.01
    data["seeds"] = [11, 12]
    study = write_and_load(data, tmp_path)
    cfg = study.run_config({"optim.lr": 1e-3})
    assert (cfg.optim.weight_decay, cfg.optim.lr, cfg.train.seed, cfg.train.epochs) == (0.01, 1e-3, 11, 4)
    assert study.run_config({"train.seed": 5}).train.seed == 5
    assert study.base_values()["optim.weight_decay"] == 0.01
    assert study.search.sampler.seed == 11           # sampler seed defaults to seeds[0]
    assert study.objective.direction == "maximize"
    with pytest.raises(StudyError, match="kind"):
        study.trial_overrides()


def test_seed_given_twice_is_an_error(tiny, tmp_path):
    data = search_study(tiny)
    data["base"]["set"]["train.seed"] = 1
    data["seeds"] = [2]
    with pytest.raises(StudyError, match="base.set.train.seed"):
        write_and_load(data, tmp_path)


def test_defaults(tiny, tmp_path):
    data = search_study(tiny)
    del data["scheduler"], data["resources"]
    study = write_and_load(data, tmp_path)
    assert study.scheduler.type == "none"
    assert study.resources.gpus_per_trial == 0 and study.resources.cpus_per_worker == 1
    assert study.resources.workers_per_trial == 1 and study.resources.custom == {}
    assert (study.objective.metric, study.objective.split, study.objective.mode) == ("r_mean", "val", "max")
    assert study.storage == "results" and study.optuna_storage is None and study.max_concurrent is None
    assert study.seeds == (study.run_config({}).train.seed,)
    assert study.search.sampler.n_startup_trials == 10


def test_storage_urls(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = search_study(tiny)
    study = write_and_load(data, tmp_path)
    assert study.storage_path() == str(tmp_path / "results")
    assert study.optuna_storage_url() == f"sqlite:///{tmp_path}/results/optuna/t.db"
    data["storage"] = f"file://{tmp_path}/shared"
    assert write_and_load(data, tmp_path).optuna_storage_url() == f"sqlite:///{tmp_path}/shared/optuna/t.db"
    data["storage"] = "s3://bucket/harma"
    data["optuna_storage"] = "journal:optuna/t.log"
    remote = write_and_load(data, tmp_path)
    assert remote.storage_is_remote and remote.storage_path() == "s3://bucket/harma"
    assert remote.optuna_storage_url() == "journal:optuna/t.log"
    for url in ("postgresql://u:p@host/db", "postgresql+psycopg2://u@h/db", "mysql+pymysql://u@h/db",
                "sqlite:////abs/x.db"):
        data["optuna_storage"] = url
        assert write_and_load(data, tmp_path).optuna_storage_url() == url


def test_resources_split_gpus_across_workers(tiny, tmp_path):
    data = search_study(tiny)
    data["resources"] = {"gpus_per_trial": 4, "workers_per_trial": 4, "cpus_per_worker": 2}
    study = write_and_load(data, tmp_path)
    assert study.total_gpus_per_trial == 4 and study.resources.gpus_per_worker == 1
    assert study.resources.cpus_per_trial == 8


def test_relative_base_config_is_found_next_to_the_study(tmp_path, monkeypatch):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "mine.yaml").write_text(yaml.safe_dump(PLACEHOLDERS["synthetic-tiny"]))
    data = ablation_study("mine.yaml")
    path = folder / "abl.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    study = load_study(path)
    assert study.run_config({}).model.arch == "tiny"


def test_load_by_bare_name(tmp_path, monkeypatch):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "abl.yaml").write_text(
        yaml.safe_dump(ablation_study(base_ref("synthetic-tiny", tmp_path))))
    monkeypatch.chdir(tmp_path)
    assert load_study("abl").name == "a"


def test_dependency_order_and_cycles():
    a = ParamSpec("loss.gamma", "float", 0.0, 1.0, when=Condition("loss.w_triplet", "gt", 0))
    b = ParamSpec("loss.w_triplet", "categorical", choices=(0.0, 1.0))
    assert dependency_order({"loss.gamma": a, "loss.w_triplet": b}) == ["loss.w_triplet", "loss.gamma"]
    b2 = ParamSpec("loss.w_triplet", "categorical", choices=(0.0, 1.0), when=Condition("loss.gamma", "gt", 0))
    with pytest.raises(StudyError, match="cycle"):
        dependency_order({"loss.gamma": a, "loss.w_triplet": b2})


def test_parse_study_takes_a_mapping(tiny):
    study = parse_study(ablation_study(tiny), source="inline")
    assert study.source == "inline" and study.kind == "ablation"


def test_the_study_package_imports_neither_ray_nor_optuna():
    import subprocess

    code = ("import sys, harma.study.model, harma.study.parse, harma.study.snapshot, harma.study.columns, "
            "harma.study.warm_start; "
            "print('ray' in sys.modules, 'optuna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
