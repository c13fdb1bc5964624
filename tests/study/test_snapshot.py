"""Study snapshots: a study saves itself (and its resolved base config) in its results storage, reads back the
same, and `harma study status|resume NAME` work from it without the study file; a resume whose study file
changed what trials run is refused.  Nothing here starts Ray."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from harma.cli import main
from harma.tune import runner
from harma.study.snapshot import (BASE_FILE, SNAPSHOTS, STUDY_FILE, _all_fields, differences, find_study,
                                 read_snapshot, save_study_snapshot, trial_fields)
from harma.study.model import Study
from harma.study.parse import load_study, parse_study
from harma.errors import StudyError

STUDIES = Path(__file__).resolve().parents[2] / "studies"
SHIPPED = ["smoke", "search-rsitmd", "ablation-rsitmd", "ablation-smoke", "replicate-smoke", "gpu-smoke"]


def moved(study: Study, root: Path) -> Study:
    return dataclasses.replace(study, storage=str(root))


def round_trip(study: Study, root: Path) -> Study:
    assert save_study_snapshot(moved(study, root)) == str(root / SNAPSHOTS / study.name / STUDY_FILE)
    return read_snapshot(str(root), study.name)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_studies_read_back_the_same(name, tmp_path):
    study = moved(load_study(STUDIES / f"{name}.yaml"), tmp_path)
    back = round_trip(study, tmp_path)
    assert differences(_all_fields(study), _all_fields(back)) == []
    assert back.storage == str(tmp_path) and back.base_config == str(tmp_path / SNAPSHOTS / name / BASE_FILE)
    assert back.run_config({}) == study.run_config({})


def smoke_data(**changes) -> dict:
    data = yaml.safe_load((STUDIES / "smoke.yaml").read_text())
    data.update(changes)
    return data


VARIANTS = {
    "string choice like a float": lambda d: d["search"]["space"].update(
        {"model.weights": {"type": "categorical", "choices": ["1e-5", None]}}),
    "int range with step and when": lambda d: d["search"]["space"].update(
        {"adapter.bottleneck": {"type": "int", "low": 8, "high": 32, "step": 8,
                                "when": {"key": "loss.w_triplet", "op": "ne", "value": 0.5}}}),
    "sampler seed null, warm start": lambda d: d["search"].update(
        {"sampler": {"seed": None, "n_startup_trials": 2}, "warm_start": {"study": "other", "top_k": 3}}),
    "seed from base.set": lambda d: (d.pop("seeds"), d["base"]["set"].update({"train.seed": 11})),
    "no scheduler, no max_concurrent": lambda d: (d.pop("scheduler"), d.pop("max_concurrent")),
    "hyperband scheduler": lambda d: d.update(scheduler=HYPERBAND),
    "hyperband, default brackets": lambda d: d.update(scheduler={"type": "hyperband", "reduction_factor": 1.5}),
}
HYPERBAND = {"type": "hyperband", "max_epochs": 4, "grace_period": 1, "reduction_factor": 2, "brackets": 2}


@pytest.mark.parametrize("variant", VARIANTS)
def test_study_variants_read_back_the_same(variant, tmp_path):
    data = smoke_data()
    VARIANTS[variant](data)
    study = parse_study(data, source="variant.yaml")
    back = round_trip(study, tmp_path)
    assert differences(_all_fields(moved(study, tmp_path)), _all_fields(back)) == []


@pytest.mark.parametrize("replicate", [{"from": "smoke", "top_k": 2, "seeds": [1, 2]}, {"from": "smoke"}])
def test_replicate_seeds_read_back_the_same(replicate, tmp_path):
    study = parse_study({"name": "rep", "kind": "replicate", "base": {"config": "synthetic-tiny"},
                         "replicate": replicate})
    assert round_trip(study, tmp_path).seeds == study.seeds


# --------------------------------------------------------------------- the base config is kept inline

def test_the_snapshot_keeps_the_base_config_after_the_file_changes_or_goes(tmp_path):
    base = tmp_path / "my-base.yaml"
    base.write_text(yaml.safe_dump({"model": {"arch": "tiny"}, "adapter": {"bottleneck": 16, "heads": 2,
                                                                            "bishare_width": 8},
                                    "data": {"synthetic_images": 120}, "train": {"epochs": 2}}))
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(
        {"name": "abl", "kind": "ablation", "base": {"config": "my-base.yaml"}, "storage": str(tmp_path / "res"),
         "arms": {"full": {}, "small": {"adapter.bottleneck": 8}}}))
    study = load_study(tmp_path / "study.yaml")
    save_study_snapshot(study)
    expected = {arm: study.run_config(ov) for arm, _, ov in study.trial_overrides()}
    base.write_text(yaml.safe_dump({"model": {"arch": "tiny"}, "adapter": {"bottleneck": 64}}))
    back = read_snapshot(str(tmp_path / "res"), "abl")
    assert {arm: back.run_config(ov) for arm, _, ov in back.trial_overrides()} == expected
    base.unlink()
    assert read_snapshot(str(tmp_path / "res"), "abl").run_config({}) == expected["full"]


# ---------------------------------------------------------------------------------------- find_study

@pytest.fixture
def saved_smoke(tmp_path, monkeypatch):
    """The smoke study saved under tmp/results; the working directory is an empty tmp/elsewhere."""
    save_study_snapshot(moved(load_study(STUDIES / "smoke.yaml"), tmp_path / "results"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return tmp_path / "results"


def test_a_bare_name_without_a_study_file_reads_the_snapshot(saved_smoke):
    study = find_study("smoke", str(saved_smoke))
    assert study.name == "smoke" and study.storage == str(saved_smoke)
    assert study.source == str(saved_smoke / SNAPSHOTS / "smoke" / STUDY_FILE)


def test_the_default_results_root_is_searched(saved_smoke, monkeypatch):
    monkeypatch.chdir(saved_smoke.parent)
    assert find_study("smoke").storage == "results"


def test_no_study_file_and_no_snapshot_is_one_error(saved_smoke):
    with pytest.raises(StudyError) as err:
        find_study("other", str(saved_smoke))
    message = str(err.value)
    assert message.startswith("study file studies/other.yaml: not found, and no snapshot of study 'other' under")
    assert "--results ROOT" in message and "\n" not in message


def test_a_missing_file_path_is_not_looked_up_as_a_name(saved_smoke):
    with pytest.raises(StudyError, match="study file smoke.yaml: not found"):
        find_study("smoke.yaml", str(saved_smoke))


def test_status_by_name_without_the_study_file(saved_smoke, capsys):
    assert main(["study", "status", "smoke", "--results", str(saved_smoke)]) == 0
    assert capsys.readouterr().out.strip() == "smoke: no trials recorded yet"


def test_status_without_file_or_snapshot_exits_2(saved_smoke, capsys):
    assert main(["study", "status", "smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no snapshot of study 'smoke'" in err[0]


def test_resume_by_name_runs_the_snapshot_study(saved_smoke, monkeypatch, capsys):
    seen = {}

    def fake_run(study, address=None, resume=False, max_retries=2, **watching):
        seen.update(study=study, resume=resume)
        return {"name": study.name, "planned": 1, "counts": {"COMPLETE": 1}, "interrupted": False}

    monkeypatch.setattr(runner, "run_study", fake_run)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["study", "resume", "smoke", "--results", str(saved_smoke)]) == 0
    assert seen["resume"] and seen["study"].storage == str(saved_smoke)
    assert seen["study"].run_config({}) == load_study(STUDIES / "smoke.yaml").run_config({})


# ------------------------------------------------------------------------------- resume with a changed file

@pytest.fixture
def running(tmp_path, monkeypatch):
    """studies/smoke.yaml in the working directory (storage: results), saved as it ran."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    data = smoke_data()
    (tmp_path / "studies" / "smoke.yaml").write_text(yaml.safe_dump(data))
    save_study_snapshot(load_study("studies/smoke.yaml"))
    return data


def edit(data: dict, change) -> None:
    data = copy.deepcopy(data)
    change(data)
    Path("studies/smoke.yaml").write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("change, named", [
    (lambda d: d["search"]["space"]["optim.lr"].update(high=0.1),
     "search.space.optim.lr: float 1e-05..0.03 log -> float 1e-05..0.1 log"),
    (lambda d: d["search"]["space"].pop("loss.margin"), "search.space.loss.margin: float 0.05..0.5 -> (none)"),
    (lambda d: d["base"]["set"].update({"adapter.bottleneck": 32}), "base config adapter.bottleneck: 16 -> 32"),
    (lambda d: d.update(seeds=[1]), "seeds: (3407,) -> (1,)"),
    (lambda d: d["resources"].update(workers_per_trial=2), "resources.workers_per_trial: 1 -> 2"),
    (lambda d: d["scheduler"].update(grace_period=2), "scheduler.grace_period: 1 -> 2"),
    (lambda d: d.update(scheduler=HYPERBAND), "scheduler.type: 'asha' -> 'hyperband'"),
])
def test_resume_refuses_a_study_file_that_changes_trials(running, change, named):
    edit(running, change)
    with pytest.raises(StudyError) as err:
        find_study("smoke", resume=True)
    message = str(err.value)
    assert message.startswith("studies/smoke.yaml: differs from the snapshot saved when study 'smoke' ran"), message
    assert named in message and "\n" not in message, message
    assert "base config train.seed" not in message   # the seed is compared once, as `seeds`


@pytest.mark.parametrize("change", [
    lambda d: d.update(num_samples=20), lambda d: d.update(max_concurrent=4),
    lambda d: d["resources"].update(cpus_per_worker=2), lambda d: d["base"]["set"].update({"data.num_workers": 2}),
])
def test_resume_accepts_changes_that_keep_the_trials(running, change):
    edit(running, change)
    assert find_study("smoke", resume=True).name == "smoke"


def test_status_does_not_compare(running):
    edit(running, lambda d: d["search"]["space"]["optim.lr"].update(high=0.1))
    assert find_study("smoke").search.space["optim.lr"].high == 0.1


def test_resume_cli_refusal_is_one_line_exit_2(running, monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_study", lambda *a, **k: pytest.fail("run_study was called"))
    edit(running, lambda d: d.update(seeds=[1]))
    assert main(["study", "resume", "smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from the snapshot" in err[0]


def test_save_on_resume_refuses_too(running):
    edit(running, lambda d: d.update(seeds=[1]))
    with pytest.raises(StudyError, match="differs from the snapshot"):
        save_study_snapshot(load_study("studies/smoke.yaml"), resume=True)


def test_resume_refuses_a_changed_bracket_count(running, monkeypatch, capsys):
    edit(running, lambda d: d.update(scheduler=HYPERBAND))
    Path("results/snapshots/smoke/study.yaml").unlink()
    save_study_snapshot(load_study("studies/smoke.yaml"))          # the study ran with 2 brackets
    assert read_snapshot("results", "smoke").scheduler == load_study("studies/smoke.yaml").scheduler
    monkeypatch.setattr(runner, "run_study", lambda *a, **k: pytest.fail("run_study was called"))
    edit(running, lambda d: d.update(scheduler={**HYPERBAND, "brackets": 1}))
    assert main(["study", "resume", "smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from the snapshot" in err[0] and "scheduler.brackets: 2 -> 1" in err[0], err
    edit(running, lambda d: d.update(scheduler=HYPERBAND))
    assert find_study("smoke", resume=True).scheduler.brackets == 2


def test_a_new_run_keeps_the_snapshot_of_a_study_that_has_results(running):
    Path("results/trials/study=smoke").mkdir(parents=True)
    edit(running, lambda d: d.update(seeds=[1]))
    assert save_study_snapshot(load_study("studies/smoke.yaml")) is None
    assert read_snapshot("results", "smoke").seeds == (3407,)


def test_trial_fields_ignore_where_a_study_runs(running):
    study = load_study("studies/smoke.yaml")
    assert trial_fields(study) == trial_fields(moved(study, Path("/elsewhere")))


def test_run_study_saves_the_snapshot_before_ray(tmp_path, monkeypatch):
    from harma.tune import cluster

    class Stop(Exception):
        pass

    def no_ray(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(cluster, "connect", no_ray)
    study = moved(load_study(STUDIES / "smoke.yaml"), tmp_path / "res")
    with pytest.raises(Stop):
        runner.run_study(study)
    assert read_snapshot(str(tmp_path / "res"), "smoke").run_config({}) == study.run_config({})
