"""The README's "What you see while it runs" is what harma draws: its terminal frame and its lines are the
rendering of tests/progress/scenario.py, its final line is `final_line`'s wording, and the TensorBoard folder,
tags and screenshot it names are harma's.  (The MLflow, TensorBoard-value and quiet-output claims are checked by
tests/tracking and tests/tune/test_study_watch.py.)"""
from __future__ import annotations

import re
from pathlib import Path

from harma.study.parse import load_study
from harma.study_cli import final_line
from harma.tracking.tensorboard import best_tag, tensorboard_root
from scenario import frame, lines

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def block_after(marker: str) -> str:
    """The fenced block that follows `<!-- marker -->` in the README."""
    found = re.search(rf"<!-- {marker} -->\n```\n(.*?)\n```", README, re.S)
    assert found, marker
    return found.group(1)


def test_the_frame_is_the_live_view_of_the_scenario():
    assert block_after("live-frame") == frame().rstrip("\n")


def test_the_lines_are_the_first_lines_printed_for_the_scenario():
    assert block_after("live-lines").splitlines() == lines()[:3]


def test_the_final_line_is_harmas_wording():
    study = load_study(REPO / "studies" / "smoke.yaml")
    summary = {"counts": {"PRUNED": 4, "COMPLETE": 6}, "planned": 10, "best": (46.3, "trial-0005")}
    shown = final_line(study, summary, 88.0)
    assert shown == "[smoke] done in 1m28s: COMPLETE 6, PRUNED 4 of 10 trials; best val_r_mean 46.30 (trial-0005)"
    assert shown in " ".join(README.split())


def test_the_tensorboard_folder_tags_and_screenshot_are_harmas():
    assert tensorboard_root("/r", False, "NAME") == Path("/r/tensorboard/NAME")
    assert tensorboard_root("s3://b/r", True, "NAME") == Path("~/.harma/tensorboard/NAME").expanduser()
    assert best_tag("val_r_mean") == "best/val_r_mean"
    assert "`<results root>/tensorboard/NAME/<trial id>/`" in README and "`best/val_r_mean`" in README
    for name in ("tensorboard-hparams.png", "tensorboard-parallel.png", "tensorboard-scalars.png"):
        shot = REPO / "reports" / "screenshots" / name
        assert str(shot.relative_to(REPO)) in README and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
