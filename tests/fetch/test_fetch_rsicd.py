"""`harma fetch data rsicd` against a loopback Hub serving small RSICD-shaped Parquet files: the split choice,
the layout and json files the configs read, idempotence, an interrupted run, and the failures (one line each)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hub_data import parquet_bytes, rsicd_rows

from harma.cli import main
from harma.data.annotations import load_eval_annotations, load_train_annotations
from harma.fetch.sources import RSICD_COMMIT, RSICD_PARQUET

MAIN = ["--revision", "main"]             # the fake files are not the published ones: no known sha256 at main


def _fetch(out: Path, *args: str) -> int:
    return main(["fetch", "data", "rsicd", *args, "--out", str(out)])


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (inode, mtime_ns) of every file under root."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("harma: error: ") and len(err.strip().splitlines()) == 1, err
    return err


def test_hub_split_writes_what_the_configs_read(rsicd_hub, tmp_path, capsys):
    hub, rows = rsicd_hub
    out = tmp_path / "data"
    assert _fetch(out, "--split", "hub", *MAIN) == 0
    printed = capsys.readouterr().out
    assert "split hub: the Hub's train / valid / test" in printed and "--split authors" in printed
    assert "12 images in" in printed and "(12 written, 0 already there)" in printed
    assert {(r.repo_type, r.revision) for r in hub.requests} == {("dataset", "main")}
    root = out / "images" / "rsicd"
    for split_rows in rows.values():
        for name, _, data in split_rows:
            assert (root / name).read_bytes() == data           # byte for byte, never re-encoded
    train = load_train_annotations(out / "finetune" / "rsicd_train.json")
    assert train.images == [r[0] for r in rows["train"]] and len(train.captions) == 30
    assert train.caption_image == [i for i in range(6) for _ in range(5)]
    val = load_eval_annotations(out / "finetune" / "rsicd_val.json")
    assert val.images == [r[0] for r in rows["val"]] and [len(t) for t in val.img2txt] == [5, 5, 5]
    assert json.loads((out / "finetune" / "rsicd_test.json").read_text())[0]["caption"] == rows["test"][0][1]
    manifest = json.loads((root / ".harma-manifest.json").read_text())
    assert manifest["request"] == {"set": "rsicd", "split": "hub", "source": "hf:datasets/arampacha/rsicd@main"}
    assert len(manifest["images"]) == 12
    sets = [f"data.image_root={root}"] + [f"data.{s}_json={out / 'finetune' / f'rsicd_{s}.json'}"
                                          for s in ("train", "val", "test")]
    assert main(["data", "check", "--config", "rsicd-geo", "--set", *sets]) == 0
    checked = capsys.readouterr().out
    assert "fetched by `harma fetch data rsicd`: split hub, source hf:datasets/arampacha/rsicd@main" in checked
    assert checked.splitlines()[-1] == "data check: no problems"


def test_a_second_run_checks_and_does_nothing(rsicd_hub, tmp_path, capsys):
    hub, _ = rsicd_hub
    out = tmp_path / "data"
    assert _fetch(out, "--split", "hub", *MAIN) == 0
    before, asked = _files(out), len(hub.requests)
    assert _fetch(out, "--split", "hub", *MAIN) == 0
    assert "up to date: 12 images and 3 annotation files match" in capsys.readouterr().out
    assert _files(out) == before and len(hub.requests) == asked         # nothing written, nothing asked
    (out / "images" / "rsicd" / "train_3.jpg").unlink()                  # a file gone: the next run restores it
    assert _fetch(out, "--split", "hub", *MAIN) == 0
    assert "(1 written, 11 already there)" in capsys.readouterr().out


def test_an_interrupted_run_resumes_without_redoing_finished_files(rsicd_hub, tmp_path, monkeypatch, capsys):
    import harma.fetch.install as install

    out, real, calls = tmp_path / "data", install.write_bytes_atomic, []

    def dies_on_the_fifth(path, data, shared=False):
        calls.append(Path(path).name)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real(path, data, shared)

    monkeypatch.setattr(install, "write_bytes_atomic", dies_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        _fetch(out, "--split", "hub", *MAIN)
    root = out / "images" / "rsicd"
    done = _files(root)
    assert sorted(done) == sorted(calls[:4]) and not (root / ".harma-manifest.json").exists()
    assert not (out / "finetune").exists()
    calls.clear()
    monkeypatch.setattr(install, "write_bytes_atomic", lambda p, d, shared=False: (calls.append(Path(p).name),
                                                                                    real(p, d, shared)))
    assert _fetch(out, "--split", "hub", *MAIN) == 0
    assert "(8 written, 4 already there)" in capsys.readouterr().out
    assert not set(calls) & set(done)                                    # finished files were not redone
    assert {k: v for k, v in _files(root).items() if k in done} == done
    assert len(calls) == 8 + 3 + 1                                       # the rest, 3 json files, the manifest


def _authors(folder: Path, train: list[str], val: list[str], test: list[str]) -> Path:
    folder.mkdir(parents=True)
    entries = [{"caption": f"caption {j} of {name}", "image": name, "image_id": i, "label_name": "x", "label": 0}
               for i, name in enumerate(train) for j in range(5)]
    (folder / "rsicd_train.json").write_text(json.dumps(entries))
    for split, names in (("val", val), ("test", test)):
        (folder / f"rsicd_{split}.json").write_text(json.dumps(
            [{"image": name, "caption": [f"c{j} {name}" for j in range(5)]} for name in names]))
    return folder


def test_authors_split_selects_images_by_file_name(rsicd_hub, tmp_path, capsys):
    _, rows = rsicd_hub
    folder = _authors(tmp_path / "authors", ["rsicd/train_0.jpg", "rsicd/valid_100.jpg"],
                      ["rsicd/train_1.jpg", "rsicd/train_2.jpg", "rsicd/valid_101.jpg"], ["rsicd/test_200.jpg"])
    out = tmp_path / "data"
    assert _fetch(out, "--split", "authors", "--authors-json", str(folder), *MAIN) == 0
    printed = capsys.readouterr().out
    assert "split authors" in printed and "6 images in" in printed
    root = out / "images" / "rsicd"
    assert sorted(p.name for p in (root / "rsicd").iterdir()) == sorted(
        ["train_0.jpg", "valid_100.jpg", "train_1.jpg", "train_2.jpg", "valid_101.jpg", "test_200.jpg"])
    assert (root / "rsicd" / "valid_100.jpg").read_bytes() == rows["val"][0][2]
    for split in ("train", "val", "test"):
        assert (out / "finetune" / f"rsicd_{split}.json").read_bytes() == \
            (folder / f"rsicd_{split}.json").read_bytes()
    assert _fetch(out, "--split", "hub", *MAIN) == 0                     # another split: a new request
    assert "12 images in" in capsys.readouterr().out


def test_the_split_is_a_choice_the_user_makes(rsicd_hub, tmp_path, capsys):
    hub, _ = rsicd_hub
    assert _fetch(tmp_path / "d") == 2
    assert "rsicd: choose the split: --split hub" in _one_error_line(capsys)
    assert _fetch(tmp_path / "d", "--split", "authors") == 2
    assert "--split authors: give the folder" in _one_error_line(capsys)
    assert hub.requests == []


def test_authors_files_naming_an_image_the_hub_lacks(rsicd_hub, tmp_path, capsys):
    folder = _authors(tmp_path / "authors", ["train_0.jpg", "airport_9.jpg"], ["train_1.jpg"], ["test_200.jpg"])
    assert _fetch(tmp_path / "data", "--split", "authors", "--authors-json", str(folder), *MAIN) == 2
    assert "1 image(s) the authors' files name are not in hf:datasets/arampacha/rsicd@main (first: airport_9.jpg)" \
        in _one_error_line(capsys)
    assert not (tmp_path / "data").exists()


def test_an_entry_outside_the_image_root_is_refused(rsicd_hub, tmp_path, capsys):
    folder = _authors(tmp_path / "authors", ["../train_0.jpg"], ["train_1.jpg"], ["test_200.jpg"])
    assert _fetch(tmp_path / "data", "--split", "authors", "--authors-json", str(folder), *MAIN) == 2
    assert "image path '../train_0.jpg' must be relative and stay inside the image root" in _one_error_line(capsys)


def test_the_published_sha256_is_checked_at_the_pinned_revision(rsicd_hub, tmp_path, capsys):
    hub, _ = rsicd_hub
    assert _fetch(tmp_path / "data", "--split", "hub") == 2
    err = _one_error_line(capsys)
    assert {r.revision for r in hub.requests} == {RSICD_COMMIT}
    assert "data/train-00000-of-00001.parquet: sha256" in err
    assert f"differs from {RSICD_PARQUET['train'].sha256}, the hash published for dataset arampacha/rsicd" in err


def test_a_parquet_file_without_the_expected_columns(hub, tmp_path, capsys):
    for split, file in RSICD_PARQUET.items():
        hub.add(file.repo_id, file.filename, parquet_bytes(rsicd_rows(split, 2, 0), drop="captions"), "dataset")
    assert _fetch(tmp_path / "data", "--split", "hub", *MAIN) == 2
    err = _one_error_line(capsys)
    assert "expected columns filename, captions (list of strings) and image (a struct with bytes)" in err
    assert "found filename (string), image (struct<bytes: binary, path: string>)" in err


def test_parquet_files_downloaded_by_hand(tmp_path, hub, capsys):
    folder = tmp_path / "by-hand"
    folder.mkdir()
    for split, file in RSICD_PARQUET.items():
        (folder / Path(file.filename).name).write_bytes(parquet_bytes(rsicd_rows(split, 2, 10)))
    assert _fetch(tmp_path / "data", "--split", "hub", "--from", str(folder), *MAIN) == 0
    assert "6 images in" in capsys.readouterr().out and hub.requests == []
    assert _fetch(tmp_path / "data2", "--split", "hub", "--from", str(folder)) == 2     # pinned: published hash
    assert "the published hash of dataset arampacha/rsicd" in _one_error_line(capsys)


def test_offline_names_the_files_to_download_and_where(hub, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _fetch(tmp_path / "data", "--split", "hub") == 2
    err = _one_error_line(capsys)
    assert f"download {hub.url}/datasets/arampacha/rsicd/resolve/{RSICD_COMMIT}/data/train-00000-of-00001.parquet " \
           f"by hand and pass the folder holding it as --from DIR" in err
    assert hub.requests == [] and not os.path.exists(tmp_path / "data")
