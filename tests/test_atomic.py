"""harma.atomic: the whole new file or the old one, no temporary file left behind on success or on error; new
files 0600 and new folders 0700 (never looser than the umask), existing ones keep their modes."""
from __future__ import annotations

import os
import stat

import pytest

from harma.atomic import create_private_file, make_private_dirs, write_atomic, write_bytes_atomic, write_text_atomic


def test_writes_replace_and_leave_only_the_file(tmp_path):
    target = tmp_path / "a" / "b.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    write_bytes_atomic(tmp_path / "a" / "c.bin", b"\x00\x01")
    assert target.read_text() == "two" and (tmp_path / "a" / "c.bin").read_bytes() == b"\x00\x01"
    assert sorted(os.listdir(tmp_path / "a")) == ["b.txt", "c.bin"]


def test_a_failing_writer_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "x.txt"
    write_text_atomic(target, "old")

    def half(fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, half)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["x.txt"]


def test_the_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    write_text_atomic(tmp_path / "y.txt", "data")
    assert calls == ["fsync", "replace", "fsync"]  # file, rename, then the folder


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_folders_are_0700_and_files_0600_under_umask_022(tmp_path, umask):
    umask(0o022)
    write_text_atomic(tmp_path / "new" / "deeper" / "f.txt", "x")
    assert [mode(tmp_path / "new"), mode(tmp_path / "new" / "deeper")] == [0o700, 0o700]
    assert mode(tmp_path / "new" / "deeper" / "f.txt") == 0o600


def test_an_existing_folder_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    write_text_atomic(shared / "sub" / "f.txt", "x")
    assert (mode(shared), mode(shared / "sub")) == (0o755, 0o700)


def test_private_file_is_created_once_and_never_looser_than_the_umask(tmp_path, umask):
    umask(0o266)
    create_private_file(tmp_path / "strict")
    assert mode(tmp_path / "strict") == 0o400                    # 0600 narrowed by the umask
    umask(0o022)
    kept = tmp_path / "kept"
    kept.write_text("data")
    kept.chmod(0o644)
    create_private_file(kept)
    assert (kept.read_text(), mode(kept)) == ("data", 0o644)     # an existing file is left as it is


def test_a_file_where_a_folder_should_be_is_an_error(tmp_path):
    (tmp_path / "plain").write_text("x")
    for folder in (tmp_path / "plain", tmp_path / "plain" / "sub"):
        with pytest.raises(FileExistsError, match="plain'$"):
            make_private_dirs(folder)
