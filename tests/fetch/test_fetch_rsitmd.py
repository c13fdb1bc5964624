"""`harma fetch data rsitmd --from ARCHIVE_OR_FOLDER`: a zip, a tar.gz and a folder, annotation files inside the
source or given with --authors-json, a second run that does nothing, and what is refused."""
from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from hub_data import jpeg

from harma.cli import main

NAMES = {"train": ["airport_1.tif", "beach_2.tif", "bridge_3.tif"], "val": ["park_4.tif"], "test": ["port_5.tif"]}


def _annotations() -> dict[str, bytes]:
    train = [{"caption": f"caption {j} of {n}", "image": n, "image_id": i, "label_name": n.split("_")[0], "label": i}
             for i, n in enumerate(NAMES["train"]) for j in range(5)]
    out = {"train": json.dumps(train).encode()}
    for split in ("val", "test"):
        out[split] = json.dumps([{"image": n, "caption": [f"c{j} {n}" for j in range(5)]}
                                 for n in NAMES[split]]).encode()
    return out


def _source_files(with_annotations: bool) -> dict[str, bytes]:
    files = {f"RSITMD/images/{n}": jpeg(k) for k, n in enumerate(sum(NAMES.values(), []))}
    files["RSITMD/images/unused_9.tif"] = jpeg(99)
    if with_annotations:
        files.update({f"HarMA/data/finetune/rsitmd_{s}.json": d for s, d in _annotations().items()})
    return files


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def _folder(path: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def _fetch(out: Path, *args: str) -> int:
    return main(["fetch", "data", "rsitmd", *args, "--out", str(out)])


def _check_written(out: Path, files: dict[str, bytes]) -> None:
    root = out / "images" / "rsitmd"
    assert sorted(p.name for p in root.iterdir()) == sorted(sum(NAMES.values(), []) + [".harma-manifest.json"])
    for name in sum(NAMES.values(), []):
        assert (root / name).read_bytes() == files[f"RSITMD/images/{name}"]
    for split, data in _annotations().items():
        assert (out / "finetune" / f"rsitmd_{split}.json").read_bytes() == data


@pytest.mark.parametrize("make", [_zip, _tar])
def test_archive_with_the_annotations_inside(tmp_path, capsys, make):
    files = _source_files(with_annotations=True)
    archive = make(tmp_path / ("rsitmd.zip" if make is _zip else "rsitmd.tar.gz"), files)
    assert _fetch(tmp_path / "data", "--from", str(archive)) == 0
    printed = capsys.readouterr().out
    assert "rsitmd: 5 images in" in printed and "train      3 images      15 captions" in printed
    _check_written(tmp_path / "data", files)


def test_folder_with_authors_json_and_a_second_run(tmp_path, capsys):
    files = _source_files(with_annotations=False)
    src = _folder(tmp_path / "src", files)
    authors = tmp_path / "authors"
    authors.mkdir()
    for split, data in _annotations().items():
        (authors / f"rsitmd_{split}.json").write_bytes(data)
    out = tmp_path / "data"
    assert _fetch(out, "--from", str(src), "--authors-json", str(authors)) == 0
    _check_written(out, files)
    capsys.readouterr()
    assert _fetch(out, "--from", str(src), "--authors-json", str(authors)) == 0
    assert "rsitmd: up to date: 5 images and 3 annotation files match" in capsys.readouterr().out


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("harma: error: ") and len(err.strip().splitlines()) == 1, err
    return err


def test_no_annotation_files_anywhere(tmp_path, capsys):
    src = _folder(tmp_path / "src", _source_files(with_annotations=False))
    assert _fetch(tmp_path / "data", "--from", str(src)) == 2
    assert "no rsitmd_train.json, rsitmd_val.json, rsitmd_test.json inside; pass the folder" in _error(capsys)


def test_an_image_missing_from_the_source(tmp_path, capsys):
    files = _source_files(with_annotations=True)
    del files["RSITMD/images/park_4.tif"]
    archive = _zip(tmp_path / "rsitmd.zip", files)
    assert _fetch(tmp_path / "data", "--from", str(archive)) == 2
    assert f"rsitmd: 1 image(s) the annotations name were not in the source local:{archive} (first: park_4.tif)" \
        in _error(capsys)
    assert not (tmp_path / "data" / "images" / "rsitmd" / ".harma-manifest.json").exists()


def test_not_an_archive(tmp_path, capsys):
    bogus = tmp_path / "rsitmd.rar"
    bogus.write_bytes(b"not an archive")
    assert _fetch(tmp_path / "data", "--from", str(bogus)) == 2
    assert "expected a folder, a zip or a tar archive" in _error(capsys)
    assert _fetch(tmp_path / "data", "--from", str(tmp_path / "nowhere")) == 2
    assert "no such folder or archive" in _error(capsys)


def test_a_bad_annotation_file_inside_an_archive_is_named_as_its_member(tmp_path, capsys):
    files = _source_files(with_annotations=True)
    files["HarMA/data/finetune/rsitmd_val.json"] = b'[{"image": "park_4.tif"}]'
    archive = _zip(tmp_path / "rsitmd.zip", files)
    assert _fetch(tmp_path / "data", "--from", str(archive)) == 2
    assert f"{archive}:HarMA/data/finetune/rsitmd_val.json: entry 0: missing key 'caption'" in _error(capsys)
