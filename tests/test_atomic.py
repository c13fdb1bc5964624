"""harma.atomic: the whole new file or the old one, no temporary file left behind on success or on error; new
files 0600 and new folders 0700 (never looser than the umask), existing ones keep their modes; shared files
(report pages) 0666 and folders 0777 less the umask."""
from __future__ import annotations

import os
import stat

import pytest

from harma.atomic import create_private_file, make_private_dirs, write_atomic, write_bytes_atomic, write_text_atomic
from harma.errors import WriteError


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


def test_shared_files_and_folders_get_what_open_and_mkdir_would_give(tmp_path, umask):
    """Report pages are written `shared=True`: 0666 and new folders 0777, less the umask, also when replaced."""
    umask(0o027)
    page = tmp_path / "pub" / "deeper" / "index.html"
    write_text_atomic(page, "one", shared=True)
    assert [mode(tmp_path / "pub"), mode(page.parent), mode(page)] == [0o750, 0o750, 0o640]
    page.chmod(0o600)
    write_bytes_atomic(page, b"two", shared=True)
    assert (page.read_bytes(), mode(page)) == (b"two", 0o640)


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


def test_a_file_in_the_way_of_the_folder_is_one_write_error_naming_the_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(WriteError, match=r"cannot write .*plain/sub/f.txt: a file is in the way"):
        write_text_atomic(tmp_path / "plain" / "sub" / "f.txt", "y")
    assert (tmp_path / "plain").read_text() == "x"


def _char_device(path):
    """A character device node (1, 7: /dev/full's numbers) in a temp folder, or skip where mknod is refused."""
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 7))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"mknod is not allowed here ({exc})")


@pytest.mark.parametrize("kind", ["char device", "fifo", "socket", "symlink", "folder"])
def test_only_a_regular_file_or_a_missing_path_is_ever_replaced(tmp_path, kind):
    import socket

    target = tmp_path / "out.csv"
    if kind == "char device":
        _char_device(target)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
    elif kind == "symlink":
        (tmp_path / "real.csv").write_text("kept")
        target.symlink_to(tmp_path / "real.csv")
    else:
        target.mkdir()
    before = os.lstat(target)
    words = {"char device": "a character device", "fifo": "a FIFO", "socket": "a socket",
             "symlink": "a symbolic link", "folder": "a folder"}[kind]
    with pytest.raises(WriteError, match=f"cannot write {target}: it is {words}; harma replaces only regular"):
        write_text_atomic(target, "data")
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)      # the very same node
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"out.csv", *(["real.csv"] if kind == "symlink" else [])})
    if kind == "symlink":
        assert (tmp_path / "real.csv").read_text() == "kept"


def test_killed_writes_leave_debris_that_is_found_and_removed(tmp_path):
    from harma.atomic import find_debris, remove_debris

    write_text_atomic(tmp_path / "a" / "kept.parquet", "x")
    debris = [tmp_path / "a" / ".kept.parquet.ab_cd123.tmp", tmp_path / "b" / ".last.pt.zz9x8y7w.tmp"]
    for path in debris:
        path.parent.mkdir(exist_ok=True)
        path.write_text("half")
    (tmp_path / "a" / "notes.tmp").write_text("a user's file")               # not harma's name pattern
    assert find_debris(tmp_path) == sorted(debris)
    assert remove_debris(tmp_path) == sorted(debris)
    assert find_debris(tmp_path) == [] and (tmp_path / "a" / "notes.tmp").exists()
    assert (tmp_path / "a" / "kept.parquet").read_text() == "x"
