"""Files that cannot be written: a full disk or a read-only folder is one error naming the file (WriteError,
exit 2 on the CLI) with no temporary file left, and `harma train` refuses an unwritable train.out_dir or a
batch larger than the train split before it starts."""
from __future__ import annotations

import errno
import os
import tempfile

import pytest

from harma import atomic
from harma.atomic import WriteError, write_atomic, write_text_atomic
from harma.cli import main
from harma.writable import write_problem

TINY = ["--config", "synthetic-tiny"]


def fail_with(code: int):
    def raiser(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return raiser


# ------------------------------------------------------------------------------------------ atomic writer

def test_disk_full_at_fsync_is_a_write_error_naming_the_file(tmp_path, monkeypatch):
    target = tmp_path / "results.parquet"
    write_text_atomic(target, "old")
    monkeypatch.setattr(atomic.os, "fsync", fail_with(errno.ENOSPC))
    with pytest.raises(WriteError) as err:
        write_text_atomic(target, "new")
    assert str(err.value) == f"cannot write {target}: no space left on the device (ENOSPC)"
    assert isinstance(err.value, OSError) and err.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["results.parquet"]


def test_disk_full_while_writing_leaves_no_temporary_file(tmp_path):
    def write(fh):
        fh.write(b"part")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match="no space left"):
        write_atomic(tmp_path / "last.pt", write)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("code, words", [(errno.EROFS, "read-only"), (errno.EACCES, "permission denied"),
                                         (errno.EDQUOT, "quota")])
def test_read_only_or_refused_folder_is_a_write_error(tmp_path, monkeypatch, code, words):
    monkeypatch.setattr(tempfile, "mkstemp", fail_with(code))
    with pytest.raises(WriteError, match=words) as err:
        write_text_atomic(tmp_path / "config.yaml", "x")
    assert str(tmp_path / "config.yaml") in str(err.value)


def test_every_os_error_of_a_write_names_the_file_asked_for_never_the_temporary_one(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic.os, "fsync", fail_with(errno.EIO))
    with pytest.raises(WriteError) as err:
        write_text_atomic(tmp_path / "a.txt", "x")
    assert err.value.errno == errno.EIO and err.value.filename == str(tmp_path / "a.txt")
    assert ".tmp" not in str(err.value) and os.listdir(tmp_path) == []


def test_write_error_survives_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(WriteError(errno.ENOSPC, "No space left on device", "/r/x.parquet")))
    assert isinstance(err, WriteError) and str(err) == "cannot write /r/x.parquet: no space left on the device (ENOSPC)"


def test_a_write_error_during_harma_train_is_one_line_exit_2(tmp_path, monkeypatch, one_line):
    monkeypatch.setattr(atomic.os, "fsync", fail_with(errno.ENOSPC))
    out = tmp_path / "out"
    assert main(["train", *TINY, "--set", f"train.out_dir={out}", "train.device=cpu"]) == 2
    line = one_line()
    assert line == f"harma: error: cannot write {out / 'config.yaml'}: no space left on the device (ENOSPC)"
    assert os.listdir(out) == []


# ----------------------------------------------------------------------------------------- write probe

def test_probe_of_a_missing_folder_creates_nothing(tmp_path):
    assert write_problem(tmp_path / "a" / "b" / "c") is None
    assert os.listdir(tmp_path) == []


def test_probe_under_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    assert write_problem(tmp_path / "f" / "results") == f"{tmp_path / 'f'} is a file, not a folder"


def test_probe_of_a_read_only_file_system(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "mkstemp", fail_with(errno.EROFS))
    assert write_problem(tmp_path) == f"cannot create a file in {tmp_path}: the file system is read-only (EROFS)"


def test_probe_of_a_0555_folder(read_only_dir):
    assert write_problem(read_only_dir / "runs") == (f"cannot create a file in {read_only_dir}: permission denied "
                                                     f"(EACCES)")


# ---------------------------------------------------------------------------------------- harma train

def test_train_out_dir_under_a_file(tmp_path, one_line):
    (tmp_path / "f").write_text("")
    assert main(["train", *TINY, "--set", f"train.out_dir={tmp_path / 'f' / 'run'}"]) == 2
    line = one_line()
    assert "train.out_dir: expected a folder this process can write" in line and str(tmp_path / "f") in line


def test_train_out_dir_on_a_read_only_file_system(tmp_path, monkeypatch, one_line):
    monkeypatch.setattr(tempfile, "mkstemp", fail_with(errno.EROFS))
    assert main(["train", *TINY, "--set", f"train.out_dir={tmp_path / 'run'}"]) == 2
    line = one_line()
    assert "train.out_dir" in line and "read-only (EROFS)" in line and not (tmp_path / "run").exists()


def test_train_out_dir_in_a_0555_folder(read_only_dir, one_line):
    assert main(["train", *TINY, "--set", f"train.out_dir={read_only_dir / 'run'}"]) == 2
    line = one_line()
    assert "train.out_dir" in line and str(read_only_dir) in line and "permission denied" in line


def test_train_batch_larger_than_the_split(tmp_path, one_line):
    out = tmp_path / "out"
    assert main(["train", *TINY, "--set", "train.batch_size=1000", f"train.out_dir={out}"]) == 2
    line = one_line()
    assert line.startswith("harma: error: train.batch_size: expected at most 840") and "got 1000" in line, line
    assert "drops an incomplete last batch" in line and not out.exists()


def test_train_batch_share_under_torchrun(tmp_path, monkeypatch, one_line):
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert main(["train", *TINY, "--set", "train.batch_size=300", f"train.out_dir={tmp_path / 'o'}"]) == 2
    assert "expected at most 210" in one_line()
