"""`harma results` through the real `harma` CLI: listing studies with status counts, one study's trials, and
`export` of one study or of every study (the union of their columns) to one CSV or Parquet file, written only
where asked or under the results root; bad input is one line on stderr and exit status 2.  An `--out` that is
not a regular file (a device, a FIFO, a symbolic link), lies under a file, or cannot be written (a read-only or
full file system) is one line naming `--out` and the file asked for, and what was there is kept."""
from __future__ import annotations

import os
import stat

import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_readers import ABLATION, SEARCH, SEARCH_TRIALS, write_studies

from harma.cli import main


@pytest.fixture()
def root(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    write_studies(tmp_path / "r")
    return str(tmp_path / "r")


def test_list_and_show(root, capsys):
    assert main(["results", "--results", root]) == 0
    assert capsys.readouterr().out.splitlines() == ["abl: COMPLETE 5", "srch: COMPLETE 3"]
    assert main(["results", "show", "srch", "--results", root]) == 0
    out = capsys.readouterr().out
    assert "trial-0002" in out and "val_txt_r1 12.00" in out
    assert main(["results", "list", "--results", root + "-empty"]) == 0
    assert "no studies" in capsys.readouterr().out


def test_export_one_study_to_csv(root, tmp_path, capsys):
    out = tmp_path / "srch.csv"
    assert main(["results", "export", "srch", "--results", root, "--out", str(out)]) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    frame = pd.read_csv(out)
    expected = [f.name for f in pq.read_schema(f"{root}/trials/study=srch/trial-0000.parquet")]
    assert list(frame.columns) == expected
    assert frame["param.adapter.bottleneck"].tolist() == [v["adapter.bottleneck"] for v in SEARCH_TRIALS.values()]


def test_export_all_studies_to_parquet_holds_every_column(root, capsys):
    assert main(["results", "export", "--all", "--format", "parquet", "--results", root]) == 0
    path = os.path.join(root, "exports", "all-studies-trials.parquet")
    assert capsys.readouterr().out.strip().endswith(path)
    table = pq.read_table(path)
    assert table.num_rows == 8 and sorted(set(table["study"].to_pylist())) == ["abl", "srch"]
    params = {f"param.{k}" for k in {**SEARCH.params, **ABLATION.params}}
    assert params <= set(table.column_names)
    assert str(table.schema.field("param.loss.w_triplet").type) == "double"
    assert main(["results", "export", "--all", "--table", "epochs", "--results", root]) == 0
    assert len(pd.read_csv(os.path.join(root, "exports", "all-studies-epochs.csv"))) == 16
    assert os.listdir(".") == []  # nothing in the working directory


@pytest.mark.parametrize("argv, message", [
    (["export", "nosuch"], "no study 'nosuch'"), (["export"], "a study name or --all"),
    (["export", "abl", "--all"], "a study name or --all"), (["show", "nosuch"], "no study 'nosuch'"),
])
def test_bad_input_is_one_error_and_exit_2(root, capsys, argv, message):
    assert main(["results", *argv, "--results", root]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harma: error:") and message in err and len(err.splitlines()) == 1


def test_export_to_a_folder_is_refused(root, tmp_path, capsys):
    assert main(["results", "export", "abl", "--results", root, "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def _node(path) -> tuple[int, int, int]:
    st = os.lstat(path)
    return st.st_ino, st.st_mode, st.st_rdev


def _export_to(root: str, out) -> int:
    return main(["results", "export", "abl", "--results", root, "--out", str(out)])


def test_export_to_a_character_device_is_refused_and_the_device_kept(root, tmp_path, one_line):
    device = tmp_path / "full"
    try:
        os.mknod(device, 0o600 | stat.S_IFCHR, os.makedev(1, 7))      # /dev/full's numbers, in a temp folder
    except OSError as exc:
        pytest.skip(f"mknod is not allowed here ({exc})")
    node = _node(device)
    assert _export_to(root, device) == 2
    assert one_line() == (f"harma: error: export --out {device}: cannot write {device}: it is a character device; "
                          "harma replaces only regular files (EINVAL)")
    assert _node(device) == node and stat.S_ISCHR(node[1]) and sorted(os.listdir(tmp_path)) == ["cwd", "full", "r"]


def test_export_to_a_fifo_is_refused_without_blocking(root, tmp_path, one_line):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    node = _node(fifo)
    assert _export_to(root, fifo) == 2
    assert one_line() == (f"harma: error: export --out {fifo}: cannot write {fifo}: it is a FIFO; harma replaces "
                          "only regular files (EINVAL)")
    assert _node(fifo) == node and sorted(os.listdir(tmp_path)) == ["cwd", "pipe.csv", "r"]


def test_export_through_a_symbolic_link_is_refused_and_its_target_kept(root, tmp_path, one_line):
    (tmp_path / "real.csv").write_text("kept\n")
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "real.csv")
    assert _export_to(root, link) == 2
    assert one_line() == (f"harma: error: export --out {link}: cannot write {link}: it is a symbolic link; harma "
                          "replaces only regular files (EINVAL)")
    assert (tmp_path / "real.csv").read_text() == "kept\n" and link.is_symlink()


def test_export_under_a_regular_file_is_one_line(root, tmp_path, one_line):
    (tmp_path / "plain").write_bytes(b"x")
    out = tmp_path / "plain" / "abl.csv"
    assert _export_to(root, out) == 2
    assert one_line() == (f"harma: error: export --out {out}: cannot write {out}: a file is in the way of a folder "
                          "on its path (EEXIST)")
    assert (tmp_path / "plain").read_bytes() == b"x"


def test_export_onto_a_read_only_file_system_names_out_and_the_file(root, tmpfs, one_line):
    read_only = tmpfs("ro", "ro,size=64k")
    out = read_only / "abl.csv"
    assert _export_to(root, out) == 2
    line = one_line()
    assert line == f"harma: error: export --out {out}: cannot write {out}: the file system is read-only (EROFS)"
    assert ".tmp" not in line and os.listdir(read_only) == []


def test_export_onto_a_full_file_system_keeps_the_old_file(root, tmpfs, fill_up, one_line):
    disk = tmpfs("disk", "size=64k")
    out = disk / "abl.csv"
    out.write_bytes(b"old export\n")
    fill_up(disk, 0)
    assert _export_to(root, out) == 2
    assert one_line() == (f"harma: error: export --out {out}: cannot write {out}: no space left on the device "
                          "(ENOSPC)")
    assert out.read_bytes() == b"old export\n" and sorted(os.listdir(disk)) == ["abl.csv", "filler"]


def test_the_default_export_path_is_named_without_out(root, tmp_path, one_line):
    (tmp_path / "r" / "exports").write_bytes(b"in the way")
    assert main(["results", "export", "abl", "--results", root]) == 2
    path = f"{root}/exports/abl-trials.csv"
    assert one_line() == (f"harma: error: export {path}: cannot write {path}: a file is in the way of a folder on "
                          "its path (EEXIST)")
