"""harma.atomic: the whole new file or the old one, no temporary file left behind on success or on error."""
from __future__ import annotations

import os

import pytest

from harma.atomic import write_atomic, write_bytes_atomic, write_text_atomic


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
