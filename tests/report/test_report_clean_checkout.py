"""Building pages, the index and a screenshot writes nothing into the checkout: `git status` (untracked and
ignored files included) is the same before and after."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _status() -> set[str]:
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return {line for line in out.splitlines() if "__pycache__" not in line and ".pytest_cache" not in line}


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="not a git checkout")
def test_reports_index_and_screenshot_leave_the_checkout_alone(fake_root, tmp_path, monkeypatch):
    from harma.report import add_report_commands
    from harma.report.browser import CHROMIUM
    import argparse

    before = _status()
    store, storage = fake_root
    parser = argparse.ArgumentParser(prog="harma")
    add_report_commands(parser.add_subparsers(dest="command"))
    monkeypatch.chdir(tmp_path)
    argv = ["report", "abl", "--results", store.root]
    index = ["report", "--index", "--results", store.root]
    if Path(CHROMIUM).exists():
        argv += ["--screenshot", str(tmp_path / "abl.png")]
        index += ["--screenshot", str(tmp_path / "index.png")]
    for args in (argv, index):
        ns = parser.parse_args(args)
        assert ns.func(ns) == 0
    assert (tmp_path / "reports" / "abl" / "index.html").is_file()
    assert (tmp_path / "reports" / "studies.csv").is_file()
    if Path(CHROMIUM).exists():
        assert (tmp_path / "abl.png").stat().st_size > 10_000 and (tmp_path / "index.png").is_file()
    assert _status() == before
