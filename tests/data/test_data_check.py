"""`harma data check` and its quick part before `harma train` and a study: a set with a missing image, a corrupt
image and an image in two splits is refused with each named; a clean set passes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harma.cli import main
from harma.config import load_config
from harma.data.check import check_data, check_data_inputs
from harma.data.check_table import per_image_text
from harma.errors import DataError


def _png(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)


def _caps(name: str, n: int = 5) -> list[str]:
    return [f"view {j} of {name}" for j in range(n)]


def write_set(root: Path, broken: bool) -> dict[str, str]:
    """A 3 / 2 / 2 image set; `broken`: train names a missing gone.png, test holds a corrupt bad.png and shares
    shared.png with val.  t0 repeats one caption; shared.png repeats one caption of v0."""
    images = root / "images"
    images.mkdir(parents=True)
    for k, name in enumerate(["t0.png", "t1.png", "v0.png", "shared.png", "t2.png", "ok.png", "ok2.png"]):
        _png(images / name, k)
    (images / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    t0 = _caps("t0")
    t0[4] = t0[0]
    train_images = [("t0.png", t0), ("t1.png", _caps("t1")), ("gone.png" if broken else "t2.png", _caps("t2"))]
    train = [{"caption": c, "image": img, "image_id": i} for i, (img, caps) in enumerate(train_images) for c in caps]
    shared = _caps("shared")
    shared[2] = "view 1 of v0"
    val = [{"image": "v0.png", "caption": _caps("v0")}, {"image": "shared.png", "caption": shared}]
    test = [{"image": "shared.png" if broken else "ok.png", "caption": _caps("s", 4)},
            {"image": "bad.png" if broken else "ok2.png", "caption": _caps("bad")}]
    paths = {"data.image_root": str(images)}
    for split, data in (("train", train), ("val", val), ("test", test)):
        paths[f"data.{split}_json"] = str(root / f"{split}.json")
        (root / f"{split}.json").write_text(json.dumps(data))
    return paths


def _sets(paths: dict[str, str], **extra) -> list[str]:
    return [f"{k}={v}" for k, v in {**paths, "data.synthetic_images": 0, **extra}.items()]


def test_check_names_each_problem_and_exits_1(tmp_path, capsys):
    paths = write_set(tmp_path, broken=True)
    assert main(["data", "check", "--config", "synthetic-tiny", "--set", *_sets(paths)]) == 1
    lines = capsys.readouterr().out.splitlines()
    root = paths["data.image_root"]
    assert lines[0] == f"data check: image root {root}, images decoded at 32x32"
    assert lines[1].split() == ["split", "annotations", "images", "captions", "captions/image", "repeated", "in",
                                "image", "repeated", "across", "images", "missing", "not", "decodable"]
    assert lines[2].split() == ["train", paths["data.train_json"], "3", "15", "5", "1", "0", "1", "0"]
    assert lines[3].split() == ["val", paths["data.val_json"], "2", "10", "5", "0", "1", "0", "0"]
    assert lines[4].split() == ["test", paths["data.test_json"], "2", "9", "4", "x", "1;", "5", "x", "1", "0", "0",
                                "0", "1"]
    assert lines[5] == "images in more than one split: 1"
    assert lines[6] == f"problem: {paths['data.train_json']} entry 10: image file {root}/gone.png not found"
    assert lines[7].startswith(f"problem: {paths['data.test_json']} entry 1: image file {root}/bad.png cannot be "
                               f"decoded at 32x32 (UnidentifiedImageError: ")
    assert lines[8] == (f"problem: image shared.png is in more than one split: val ({paths['data.val_json']} "
                        f"entry 1) and test ({paths['data.test_json']} entry 0)")
    assert lines[9:] == ["data check: 3 problem(s)"]


def test_a_clean_set_passes(tmp_path, capsys):
    paths = write_set(tmp_path, broken=False)
    assert main(["data", "check", "--config", "synthetic-tiny", "--set", *_sets(paths)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "data check: no problems" and out[-2] == "images in more than one split: 0"


def test_quick_check_skips_decoding_and_raises_one_line(tmp_path):
    paths = write_set(tmp_path, broken=True)
    cfg = load_config("synthetic-tiny", {**paths, "data.synthetic_images": 0})
    report = check_data(cfg.data, decode=False)
    assert [s.undecodable for s in report.splits] == [0, 0, 0] and len(report.problems) == 2
    with pytest.raises(DataError) as exc:
        check_data_inputs(cfg.data)
    root = paths["data.image_root"]
    assert str(exc.value) == (
        f"data: 2 problem(s) with the configured data set: {paths['data.train_json']} entry 10: image file "
        f"{root}/gone.png not found; image shared.png is in more than one split: val ({paths['data.val_json']} "
        f"entry 1) and test ({paths['data.test_json']} entry 0) (`harma data check` with the same --config and "
        f"--set lists them all; HARMA_SKIP_DATA_CHECK=1 skips this check)")


def test_quick_check_skips_synthetic_sets_and_obeys_the_switch(tmp_path, monkeypatch):
    check_data_inputs(load_config("synthetic-tiny", {"data.image_root": str(tmp_path / "never-made")}).data)
    assert not (tmp_path / "never-made").exists()
    paths = write_set(tmp_path, broken=True)
    monkeypatch.setenv("HARMA_SKIP_DATA_CHECK", "1")
    check_data_inputs(load_config("synthetic-tiny", {**paths, "data.synthetic_images": 0}).data)


def test_unloadable_annotations_and_unset_paths_are_problems(tmp_path):
    paths = write_set(tmp_path, broken=False)
    Path(paths["data.val_json"]).write_text("{not json")
    cfg = load_config("synthetic-tiny", {**paths, "data.synthetic_images": 0, "data.test_json": None})
    report = check_data(cfg.data, decode=False)
    assert [s.split for s in report.splits] == ["train"]
    assert report.problems[0].startswith(f"{paths['data.val_json']}: not valid json")
    assert report.problems[1] == "data.test_json: not set"


def test_train_refuses_before_it_starts(tmp_path, capsys):
    paths = write_set(tmp_path, broken=True)
    out_dir = tmp_path / "run"
    assert main(["train", "--config", "synthetic-tiny", "--set", *_sets(paths, **{"train.out_dir": out_dir,
                                                                                 "train.batch_size": 4})]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harma: error: data: 2 problem(s) with the configured data set: ") and \
        len(err.strip().splitlines()) == 1
    assert not out_dir.exists()


def test_study_preflight_checks_the_base_data(tmp_path, monkeypatch):
    from harma.study.parse import load_study
    from harma.tune.preflight import preflight

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    paths = write_set(tmp_path, broken=True)
    study_file = tmp_path / "s.yaml"
    base = {**paths, "train.batch_size": 4, "data.synthetic_images": 0}
    study_file.write_text(json.dumps({"name": "s", "kind": "ablation", "base": {"config": "synthetic-tiny",
                                      "set": base}, "arms": {"harma": {}}, "storage": str(tmp_path / "results")}))
    with pytest.raises(DataError, match=rf"^{study_file}: base: data: 2 problem\(s\) with the configured data set"):
        preflight(load_study(study_file), None)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    base.update(write_set(tmp_path / "clean2", broken=False))
    study_file.write_text(json.dumps({"name": "s", "kind": "ablation", "base": {"config": "synthetic-tiny",
                                      "set": base}, "arms": {"harma": {}}, "storage": str(tmp_path / "results")}))
    preflight(load_study(study_file), None)


def test_per_image_text():
    assert per_image_text({5: 1093}) == "5"
    assert per_image_text({4: 3, 5: 1090, 6: 3}) == "5 x 1,090; 4 x 3; 6 x 3"
