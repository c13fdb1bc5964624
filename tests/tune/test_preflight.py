"""`harma study run` into results storage it cannot write is one line naming the key and the path, exit 2,
before the runner (and Ray) is reached; nothing is created by the check."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
import yaml

from harma.cli import main
from harma.tune import runner
from harma.tune.preflight import check_storage
from harma.study.parse import parse_study
from harma.errors import StudyError

SMOKE = yaml.safe_load((Path(__file__).resolve().parents[2] / "studies" / "smoke.yaml").read_text())


@pytest.fixture
def no_runner(monkeypatch):
    monkeypatch.setattr(runner, "run_study", lambda *a, **k: pytest.fail("run_study was called"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def run_cli(tmp_path: Path, capsys, **changes) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**SMOKE, **changes}))
    assert main(["study", "run", str(path)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"harma: error: {path}: "), lines[0]
    return lines[0]


def test_storage_in_a_read_only_folder(read_only_dir, tmp_path, capsys, no_runner):
    storage = read_only_dir / "results"
    line = run_cli(tmp_path, capsys, storage=str(storage))
    assert f"storage: expected a folder this process can write, got '{storage}'" in line
    assert f"cannot create a file in {read_only_dir}: permission denied (EACCES)" in line


def test_storage_under_a_file(tmp_path, capsys, no_runner):
    (tmp_path / "file").write_text("")
    line = run_cli(tmp_path, capsys, storage=str(tmp_path / "file" / "results"))
    assert "storage: expected a folder this process can write" in line and "is a file, not a folder" in line


def test_storage_on_a_read_only_file_system(tmp_path, capsys, no_runner, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    line = run_cli(tmp_path, capsys, storage=str(tmp_path / "results"))
    assert "storage:" in line and "the file system is read-only (EROFS)" in line
    assert not (tmp_path / "results").exists()


def test_optuna_journal_under_a_file(tmp_path, capsys, no_runner):
    (tmp_path / "file").write_text("")
    line = run_cli(tmp_path, capsys, storage=str(tmp_path / "results"),
                   optuna_storage=f"journal:{tmp_path / 'file' / 'smoke.log'}")
    assert "optuna_storage: expected a folder this process can write" in line


def test_a_writable_storage_is_left_untouched(tmp_path):
    study = parse_study({**SMOKE, "storage": str(tmp_path / "a" / "results")})
    check_storage(study)
    assert os.listdir(tmp_path) == []


def test_a_bucket_is_left_to_its_first_write(tmp_path):
    study = parse_study({**SMOKE, "storage": "s3://bucket/results",
                         "optuna_storage": f"sqlite:///{tmp_path / 'optuna.db'}"})
    check_storage(study)


def test_an_unwritable_optuna_sqlite_folder(tmp_path):
    (tmp_path / "file").write_text("")
    study = parse_study({**SMOKE, "storage": str(tmp_path / "results"),
                         "optuna_storage": f"sqlite:///{tmp_path / 'file' / 'optuna.db'}"})
    with pytest.raises(StudyError, match="optuna_storage: expected a folder this process can write"):
        check_storage(study)
