"""Real file-system faults, where this machine lets the test mount a tmpfs (root in a container, as in CI):
a trainer writing into a full 64 KB file system, a study whose storage is a read-only file system, and a
results file rewritten on a full file system.  Each is one error naming the file or key, leaving the old
file whole and no temporary file behind.  Skipped where mounting is not allowed (the `tmpfs` fixture is in
tests/conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from harma.atomic import WriteError, write_bytes_atomic
from harma.cli import main

REPO = Path(__file__).resolve().parents[1]


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*.tmp")]


def test_training_into_a_full_file_system_is_one_line(tmpfs, tmp_path, one_line):
    full = tmpfs("full", "size=64k")
    out = full / "run"
    argv = ["train", "--config", "synthetic-tiny", "--set", f"train.out_dir={out}", "train.device=cpu",
            "train.epochs=1", f"data.image_root={tmp_path / 'synthetic'}"]
    assert main(argv) == 2
    line = one_line()
    assert line.startswith(f"harma: error: cannot write {out}/") and "no space left on the device (ENOSPC)" in line
    assert _temporaries(full) == []


def test_a_results_file_rewritten_on_a_full_file_system_keeps_its_old_bytes(tmpfs):
    full = tmpfs("full", "size=64k")
    target = full / "trials" / "a.parquet"
    write_bytes_atomic(target, b"old row")
    with pytest.raises(WriteError, match=f"cannot write {target}: no space left on the device"):
        write_bytes_atomic(target, os.urandom(200_000))
    assert target.read_bytes() == b"old row" and _temporaries(full) == []


def test_a_study_whose_storage_is_a_read_only_file_system(tmpfs, tmp_path, monkeypatch, one_line):
    from harma.tune import runner

    monkeypatch.setattr(runner, "run_study", lambda *a, **k: pytest.fail("run_study was called"))
    read_only = tmpfs("ro", "ro,size=64k")
    study = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**study, "storage": str(read_only / "results")}))
    assert main(["study", "run", str(path)]) == 2
    line = one_line()
    assert f"{path}: storage: expected a folder this process can write" in line and "(EROFS)" in line
    assert os.listdir(read_only) == []
