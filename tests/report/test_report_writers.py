"""`harma report` cannot hurt what is already there.  A study's report folder is built in a hidden folder
beside it and swapped in whole: a write failing mid-way (a monkeypatched ENOSPC, a real full tmpfs, a failed
final rename) leaves the previous report byte for byte and no temporary folder, and a fresh report leaves none
either.  An `--out` that is a file, under a file, a folder that is not a report, or on a read-only file system
is one line naming `--out` (exit 2) with nothing written.  The index is written file by file, `index.html`
last, leaving everything else in its folder alone.  Every other report error (an unknown study, no study and
no --index, a --screenshot that cannot be taken) is one line on stderr, exit 2."""
from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import plotly.offline
import pytest

import harma.atomic
from harma.cli import main

ENOSPC_LINE = "no space left on the device (ENOSPC)"
REP_CSVS = ["replicate-arm-definitions.csv", "replicate-curves.csv", "replicate-per-seed.csv", "replicate-summary.csv"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def report(store, study: str, out: Path, *more: str) -> int:
    return main(["report", study, "--results", store.root, "--out", str(out), *more])


@pytest.fixture
def failing_writes(monkeypatch):
    """failing_writes(n) -> the paths harma.atomic was asked to write; the n-th write (1-based) fails with
    ENOSPC, as a full disk would fail it."""
    def install(n: int) -> list[Path]:
        real, asked = harma.atomic._write_atomic, []

        def write(path, *args, **kwargs):
            asked.append(Path(path))
            if len(asked) == n:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(harma.atomic, "_write_atomic", write)
        return asked
    return install


def test_a_fresh_report_is_the_page_and_its_csvs_and_leaves_no_temporary_folder(fake_root, tmp_path, umask,
                                                                                  capsys):
    umask(0o022)
    store, _ = fake_root
    out = tmp_path / "reports" / "rep"
    assert report(store, "rep", out) == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote {out / 'index.html'}"]
    html = (out / "index.html").read_text()
    assert sorted(os.listdir(out)) == sorted(["index.html", *REP_CSVS])
    assert set(re.findall(r'<a href="([^"/#]+\.csv)">', html)) <= set(REP_CSVS)
    assert sorted(os.listdir(tmp_path / "reports")) == ["assets", "rep"]      # no hidden folder beside it
    asset = tmp_path / "reports" / "assets" / f"plotly-{plotly.offline.get_plotlyjs_version()}.min.js"
    assert f'src="../assets/{asset.name}"' in html and asset.read_text() == plotly.offline.get_plotlyjs()
    # readable by others, as open() and mkdir() make files under umask 022
    assert [mode(tmp_path / "reports"), mode(out), mode(asset.parent)] == [0o755, 0o755, 0o755]
    assert {mode(p) for p in (*out.iterdir(), asset)} == {0o644}


def test_a_rebuilt_report_replaces_the_old_folder_whole_keeping_its_mode(fake_root, tmp_path, umask):
    umask(0o022)
    store, _ = fake_root
    out = tmp_path / "reports" / "r"
    assert report(store, "rep", out) == 0
    out.chmod(0o750)
    (out / "replicate-stale.csv").write_text("x\n")          # a CSV the new page does not have
    assert report(store, "abl", out) == 0
    names = set(os.listdir(out))
    assert "replicate-stale.csv" not in names and "ablation-summary.csv" in names
    assert "ablation" in (out / "index.html").read_text() and mode(out) == 0o750
    assert sorted(os.listdir(tmp_path / "reports")) == ["assets", "r"]


@pytest.mark.parametrize("fail_at", [1, 3, 6])
def test_a_write_failing_mid_way_leaves_the_old_report_byte_for_byte(fake_root, tmp_path, failing_writes,
                                                                     one_line, fail_at):
    store, _ = fake_root
    out = tmp_path / "reports" / "r"
    assert report(store, "rep", out) == 0
    before, inode = snapshot(tmp_path / "reports"), os.stat(out).st_ino
    asked = failing_writes(fail_at)                         # the abl page writes 5 CSVs, then index.html
    assert report(store, "abl", out) == 2
    line = one_line()
    assert line == f"harma: error: report --out {out}: cannot write {out / asked[-1].name}: {ENOSPC_LINE}"
    assert len(asked) == fail_at and (asked[-1].name == "index.html") == (fail_at == 6)
    assert snapshot(tmp_path / "reports") == before and os.stat(out).st_ino == inode
    assert sorted(os.listdir(tmp_path / "reports")) == ["assets", "r"]


def test_a_failing_final_rename_puts_the_old_report_back(fake_root, tmp_path, monkeypatch, one_line):
    from harma.report import folder

    store, _ = fake_root
    out = tmp_path / "reports" / "r"
    assert report(store, "rep", out) == 0
    before = snapshot(tmp_path / "reports")
    real = os.rename

    def rename(src, dst):
        if str(src).endswith(folder.NEW_SUFFIX):            # the new report into place: refused
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real(src, dst)

    monkeypatch.setattr(folder.os, "rename", rename)
    assert report(store, "abl", out) == 2
    assert one_line().startswith(f"harma: error: report --out {out}: cannot write {out}: ")
    assert snapshot(tmp_path / "reports") == before
    assert sorted(os.listdir(tmp_path / "reports")) == ["assets", "r"]


def test_a_report_on_a_full_file_system_keeps_the_old_one(fake_root, tmpfs, fill_up, one_line):
    store, _ = fake_root
    disk = tmpfs("disk", "size=16m")
    out = disk / "reports" / "r"
    assert report(store, "rep", out) == 0                   # plotly.js (4.6 MB) and the small rep page
    filler = fill_up(disk, 12 * 1024)                       # room for about three 4 KB pages
    before = snapshot(disk / "reports")
    assert report(store, "abl", out) == 2                   # its page is 47 KB: it cannot fit
    line = one_line()
    assert line.startswith(f"harma: error: report --out {out}: cannot write {out}/") and line.endswith(ENOSPC_LINE)
    assert snapshot(disk / "reports") == before and sorted(os.listdir(disk / "reports")) == ["assets", "r"]
    filler.unlink()
    assert report(store, "abl", out) == 0 and sorted(os.listdir(disk / "reports")) == ["assets", "r"]


def test_out_naming_a_regular_file_is_one_line_and_the_file_is_kept(fake_root, tmp_path, one_line):
    store, _ = fake_root
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes\n")
    assert report(store, "rep", notes) == 2
    assert one_line() == (f"harma: error: report --out {notes}: cannot write {notes}: it is a regular file; "
                          "a report is a folder (EINVAL)")
    assert notes.read_bytes() == b"my notes\n" and os.listdir(tmp_path) == ["notes.txt"]


def test_out_under_a_regular_file_is_one_line(fake_root, tmp_path, one_line):
    store, _ = fake_root
    (tmp_path / "plain").write_bytes(b"x")
    out = tmp_path / "plain" / "rep"
    assert report(store, "rep", out) == 2
    assert one_line() == (f"harma: error: report --out {out}: cannot write {out}: a file is in the way of a "
                          "folder on its path (EEXIST)")
    assert (tmp_path / "plain").read_bytes() == b"x" and os.listdir(tmp_path) == ["plain"]


def test_out_naming_a_folder_that_is_not_a_report_is_refused_untouched(fake_root, tmp_path, one_line):
    store, _ = fake_root
    reports = tmp_path / "reports"
    assert report(store, "rep", reports / "rep") == 0
    (reports / "rep" / "notes.txt").write_text("mine")
    before = snapshot(reports)
    assert report(store, "rep", reports / "rep") == 2
    assert one_line() == (f"harma: error: report --out {reports / 'rep'}: cannot write {reports / 'rep'}: it is a "
                          "folder holding 'notes.txt', not only a report's index.html and CSV files; harma replaces "
                          "only a report folder (EINVAL)")
    assert report(store, "rep", reports) == 2                # the folder of all reports
    assert "it is a folder holding 'assets', 'rep', not only a report's" in one_line()
    assert snapshot(reports) == before and sorted(os.listdir(reports)) == ["assets", "rep"]


def test_out_on_a_read_only_file_system_is_one_line(fake_root, tmpfs, one_line):
    store, _ = fake_root
    read_only = tmpfs("ro", "ro,size=64k")
    out = read_only / "rep"
    assert report(store, "rep", out) == 2
    assert one_line() == (f"harma: error: report --out {out}: cannot write {out}: the file system is read-only "
                          "(EROFS)")
    assert os.listdir(read_only) == []


def test_a_symbolic_link_to_a_report_folder_is_followed_and_kept(fake_root, tmp_path):
    store, _ = fake_root
    real = tmp_path / "real" / "rep"
    assert report(store, "rep", real) == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    assert report(store, "abl", link) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "ablation-summary.csv" in os.listdir(real) and sorted(os.listdir(tmp_path / "real")) == ["assets", "rep"]


def test_the_index_is_written_file_by_file_index_html_last(fake_root, tmp_path, failing_writes, one_line):
    store, _ = fake_root
    out = tmp_path / "reports"
    asked = failing_writes(0)                               # record only
    assert main(["report", "--index", "--results", store.root, "--out", str(out)]) == 0
    assert [p.name for p in asked] == ["studies.csv", "index.html"]
    (out / "other.csv").write_text("a user's table\n")      # neither is the index's: both stay
    (out / "abl").mkdir()
    before = snapshot(out)
    failing_writes(1)
    assert main(["report", "--index", "--results", store.root, "--out", str(out)]) == 2
    assert one_line() == f"harma: error: report --out {out}: cannot write {out / 'studies.csv'}: {ENOSPC_LINE}"
    assert snapshot(out) == before and sorted(os.listdir(out)) == ["abl", "index.html", "other.csv", "studies.csv"]


def test_an_index_html_that_is_a_fifo_is_refused_before_any_write(fake_root, tmp_path, one_line):
    store, _ = fake_root
    os.mkfifo(tmp_path / "index.html")
    node = os.lstat(tmp_path / "index.html")
    assert main(["report-index", "--results", store.root, "--out", str(tmp_path)]) == 2
    assert one_line() == (f"harma: error: report --out {tmp_path}: cannot write {tmp_path / 'index.html'}: it is "
                          "a FIFO; harma replaces only regular files (EINVAL)")
    after = os.lstat(tmp_path / "index.html")
    assert (after.st_ino, after.st_mode) == (node.st_ino, node.st_mode) and os.listdir(tmp_path) == ["index.html"]


@pytest.mark.parametrize("argv, message", [
    (["report", "nosuch"], "report: no study 'nosuch' under {root} (studies: abl, rep, srch)"),
    (["report"], "report: give a study name or --index, not both"),
    (["report", "abl", "--index"], "report: give a study name or --index, not both"),
])
def test_report_errors_are_one_line_on_stderr_exit_2(fake_root, tmp_path, monkeypatch, capsys, argv, message):
    store, _ = fake_root
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--results", store.root]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"harma: error: {message.format(root=store.root)}\n"
    assert os.listdir(tmp_path) == []                       # no reports/ folder made


def test_a_screenshot_without_a_browser_is_refused_before_anything_is_written(fake_root, tmp_path, monkeypatch,
                                                                             one_line):
    from harma.report import browser

    store, _ = fake_root
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    png = tmp_path / "shot.png"
    assert report(store, "rep", tmp_path / "rep", "--screenshot", str(png)) == 2
    assert one_line() == (f"harma: error: report --screenshot {png}: {tmp_path / 'no-chromium'} not found: "
                          "install Debian's chromium (apt-get install chromium)")
    assert os.listdir(tmp_path) == []


def test_a_screenshot_onto_a_device_is_refused_before_anything_is_written(fake_root, tmp_path, monkeypatch,
                                                                          one_line):
    import sys

    from harma.report import browser

    store, _ = fake_root
    monkeypatch.setattr(browser, "CHROMIUM", sys.executable)  # a browser "exists": the device is what is refused
    device = tmp_path / "full"
    try:
        os.mknod(device, 0o600 | stat.S_IFCHR, os.makedev(1, 7))
    except OSError as exc:
        pytest.skip(f"mknod is not allowed here ({exc})")
    node = os.lstat(device)
    assert report(store, "rep", tmp_path / "rep", "--screenshot", str(device)) == 2
    assert one_line() == (f"harma: error: report --screenshot {device}: cannot write {device}: it is a character "
                          "device; harma replaces only regular files (EINVAL)")
    after = os.lstat(device)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (node.st_ino, node.st_mode, node.st_rdev)
    assert os.listdir(tmp_path) == ["full"]
