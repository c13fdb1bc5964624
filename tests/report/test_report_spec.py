"""Study files in reports: reproduce lines parse back, through the `harma` CLI parser and harma.config, into
the exact RunConfig each trial ran with; arms are defined against the reference arm and the base config; a
bad --study is one clear error (exit 2) naming the file."""
from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fake_studies import trial_record

from harma.cli import build_parser, main
from harma.config import load_config
from harma.report import build_study_report
from harma.report.arm_defs import arm_definitions
from harma.report.spec import SpecError, find_spec, load_spec, train_command
from harma.results.store import ResultsStore
from harma.study.columns import study_columns
from harma.study.parse import load_study

REPO = Path(__file__).resolve().parents[2]


def columns(name: str):
    """The trials columns the study driver fixes for a shipped study."""
    return study_columns(load_study(REPO / "studies" / f"{name}.yaml"))
SMOKE_TRIALS = [  # searched values as Optuna would give them, including awkward floats
    {"adapter.bottleneck": 16, "adapter.gate_init": -0.123456789012345, "adapter.block_gate_init": 1.5,
     "loss.w_contr": 1.0000000000000002, "loss.w_triplet": 0.5, "loss.w_affil": 0.0, "loss.margin": 0.2,
     "loss.gamma": 2.5e-05, "optim.lr": 0.00012345678901234567, "optim.weight_decay": 0.0},
    {"adapter.bottleneck": 32, "adapter.gate_init": 0.5, "adapter.block_gate_init": -2.0, "loss.w_contr": 0.25,
     "loss.w_triplet": 0.0, "loss.w_affil": 1.0, "loss.margin": 0.05, "optim.lr": 0.03,
     "optim.weight_decay": 0.1},
]


@pytest.fixture()
def studies_dir(tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    for name in ("smoke", "ablation-smoke"):
        shutil.copy(REPO / "studies" / f"{name}.yaml", folder / f"{name}.yaml")
    return folder


def _write_search(store: ResultsStore) -> None:
    for i, params in enumerate(SMOKE_TRIALS):
        val = {m: 40.0 - i for m in ("r_mean", "txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10",
                                     "r_mean_tie_gap")}
        store.write_trial(trial_record("smoke", f"trial-{i:04d}", "search", "COMPLETE", i, val, val,
                                       seed=3407, stop_epoch=4, best_epoch=4,
                                       params={**params, "train.seed": 3407}), columns("smoke"))


def test_reproduce_lines_rebuild_each_trials_exact_run_config(studies_dir, tmp_path):
    spec, study = load_spec(studies_dir / "smoke.yaml"), load_study(studies_dir / "smoke.yaml")
    store = ResultsStore(tmp_path / "results")
    _write_search(store)
    page = build_study_report(store, "smoke", tmp_path / "out", spec=spec)
    top = pd.read_csv(page.parent / "search-top.csv")
    assert len(top) == 2
    by_id = {f"trial-{i:04d}": p for i, p in enumerate(SMOKE_TRIALS)}
    for trial_id, line in zip(top["trial_id"], top["reproduce"]):
        argv = shlex.split(line)
        assert argv[:2] == ["harma", "train"] and "train.epochs=4" in argv  # the base override is there
        args = build_parser().parse_args(argv[1:])
        rebuilt = load_config(args.config, args.overrides)
        assert rebuilt == study.run_config({**by_id[trial_id], "train.seed": 3407})
        assert rebuilt.train.epochs == 4 and rebuilt.optim.lr == by_id[trial_id]["optim.lr"]
    assert "Base config: synthetic-tiny, with the base overrides train.epochs=4" in page.read_text()


def test_train_command_quotes_and_skips_missing(studies_dir):
    spec = load_spec(studies_dir / "smoke.yaml")
    line = train_command(spec, {"loss.gamma": float("nan"), "adapter.share": "a b", "x.none": None})
    assert line == "harma train --config synthetic-tiny --set 'adapter.share=a b' train.epochs=4"
    # a trial's own value wins over a base override of the same key
    assert train_command(spec, {"train.epochs": 2}).endswith("--set train.epochs=2")


def _write_ablation(store: ResultsStore, spec) -> None:
    i = 0
    for seed in (3407, 1):
        for arm, overrides in spec.arms.items():
            val = {m: 30.0 + i for m in ("r_mean", "txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10",
                                         "r_mean_tie_gap")}
            store.write_trial(trial_record("ablation-smoke", f"{arm}-s{seed}", "ablation", "COMPLETE", i, val, val,
                                           arm=arm, seed=seed, stop_epoch=3, best_epoch=3,
                                           params={**overrides, "train.seed": seed}), columns("ablation-smoke"))
            i += 1


def test_arms_defined_against_reference_and_base(studies_dir, tmp_path):
    spec = load_spec(studies_dir / "ablation-smoke.yaml")
    store = ResultsStore(tmp_path / "results")
    _write_ablation(store, spec)
    page = build_study_report(store, "ablation-smoke", tmp_path / "with", spec=spec)
    table = pd.read_csv(page.parent / "ablation-arm-definitions.csv").set_index("arm")
    assert table.loc["harma", "overrides"] == "none (the base config)"
    assert table.loc["harma", "versus reference"] == "reference arm"
    assert table.loc["adapter-only", "overrides"] == "adapter.share=none"
    assert table.loc["adapter-only", "versus reference"] == "adapter.share: text (base) → none"
    assert table.loc["with-triplet", "versus reference"] == "loss.w_triplet: 0.0 (base) → 1.0"
    html = page.read_text()
    assert "Base config: synthetic-tiny, with the base overrides train.epochs=3" in html
    assert "Small samples: harma has 2 seeds" in html  # 2 seeds per arm
    # without the study file the overrides come from the results, compared with '(base)'
    page = build_study_report(store, "ablation-smoke", tmp_path / "without")
    table = pd.read_csv(page.parent / "ablation-arm-definitions.csv").set_index("arm")
    assert table.loc["adapter-only", "versus reference"] == "adapter.share: (base) → none"
    assert "Base config: unknown, since no study file was found" in page.read_text()


def test_arm_definitions_table_by_hand():
    table = arm_definitions({"ref": {"a.x": 1}, "b": {"a.x": 2, "a.y": "s"}, "c": {"a.x": 1}}, "ref",
                            {"a.x": 0, "a.y": "t"})
    assert table["versus reference"].tolist() == ["reference arm", "a.x: 1 → 2; a.y: t (base) → s",
                                                  "identical overrides"]
    assert arm_definitions({"b": {}}, "ref")["versus reference"].tolist() == ["no reference arm 'ref'"]


def _report(argv: list[str]) -> int:
    """`harma report ...` through the real CLI: 0, or 2 with one error line on stderr."""
    return main(argv)


def test_bad_study_file_is_one_clear_error(studies_dir, tmp_path, one_line, monkeypatch):
    store = ResultsStore(tmp_path / "results")
    _write_search(store)
    out = str(tmp_path / "o")
    assert _report(["report", "smoke", "--results", store.root, "--out", out, "--study",
                    str(tmp_path / "nope.yaml")]) == 2
    assert one_line() == f"harma: error: report --study: study file {tmp_path / 'nope.yaml'}: not found"
    assert _report(["report", "smoke", "--results", store.root, "--out", out, "--study",
                    str(studies_dir / "ablation-smoke.yaml")]) == 2
    assert "defines study 'ablation-smoke', not 'smoke'" in one_line()
    (tmp_path / "bad.yaml").write_text("name: smoke\nkind: search\nbase: {config: synthetic-tiny, set: {x.y: 1}}\n")
    assert _report(["report", "smoke", "--results", store.root, "--out", out, "--study",
                    str(tmp_path / "bad.yaml")]) == 2
    assert f"report --study: study file {tmp_path / 'bad.yaml'}:" in one_line()
    assert not (tmp_path / "o").exists()                    # refused before anything is written
    monkeypatch.chdir(tmp_path)  # studies/smoke.yaml found by default
    assert find_spec("smoke") is not None and find_spec("other") is None
    assert _report(["report", "smoke", "--results", store.root, "--out", out]) == 0
    assert "harma train --config synthetic-tiny --set" in (tmp_path / "o" / "index.html").read_text()
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.yaml")
    (studies_dir / "smoke.yaml").write_text("name: smoke\nkind: search\n")  # the default file, now invalid
    assert _report(["report", "smoke", "--results", store.root, "--out", out]) == 2
    assert "report --study: study file studies/smoke.yaml:" in one_line()


def test_without_a_study_file_the_report_reads_the_snapshot(tmp_path, monkeypatch):
    import dataclasses

    from harma.study.snapshot import save_study_snapshot

    store = ResultsStore(tmp_path / "results")
    study = load_study(REPO / "studies" / "smoke.yaml")
    save_study_snapshot(dataclasses.replace(study, storage=store.root))     # as the run does, before results
    _write_search(store)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")               # no studies/smoke.yaml here
    assert find_spec("smoke") is None                        # no results root given: nothing to read
    spec = find_spec("smoke", results=store.root)
    assert spec is not None and spec.base_set == study.base_set
    assert load_config(spec.base_config) == load_config("synthetic-tiny")   # the saved base, resolved
    assert _report(["report", "smoke", "--results", store.root, "--out", str(tmp_path / "o")]) == 0
    page = (tmp_path / "o" / "index.html").read_text()
    assert f"harma train --config {spec.base_config} --set" in page
