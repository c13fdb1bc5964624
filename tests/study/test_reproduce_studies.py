"""The shipped reproduce studies: the paper's recipe over 3 seeds, GeoRSCLIP by name, the published numbers beside
them, their cost stated as an estimate, and a snapshot that reads back the same."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harma.fetch.sources import WEIGHTS
from harma.study.paper import find_paper
from harma.study.parse import load_study

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, config, published", [("reproduce-rsitmd", "rsitmd-geo", 52.3),
                                                     ("reproduce-rsicd", "rsicd-geo", 38.9)])
def test_reproduce_study(name, config, published, tmp_path):
    from harma.study.snapshot import read_snapshot, save_study_snapshot

    path = REPO / "studies" / f"{name}.yaml"
    study = load_study(path)
    assert (study.name, study.kind, study.base_config, study.arms) == (name, "ablation", config, {"harma": {}})
    assert len(study.seeds) == 3 and study.seeds[0] == 3407 and study.scheduler.type == "none"
    assert study.base_set == {"model.weights": "georsclip-vit-b-32"} and "georsclip-vit-b-32" in WEIGHTS
    cfg = study.run_config()
    assert (cfg.optim.lr, cfg.train.epochs, cfg.train.batch_size, cfg.model.quick_gelu, cfg.train.precision) == \
        (4e-6, 80, 214, True, "fp32")
    assert (study.resources.workers_per_trial, study.resources.gpus_per_trial) == (2, 2)
    paper = find_paper(study.source, name)
    assert (paper.split, paper.metrics) == ("test", {"r_mean": published})
    text = " ".join(path.read_text().replace("#", " ").split())
    assert "ESTIMATE" in text and "GPU-hours" in text and "not measured" in text
    saved = dataclasses.replace(study, storage=str(tmp_path / "results"))
    save_study_snapshot(saved)
    assert read_snapshot(str(tmp_path / "results"), name).arms == study.arms
