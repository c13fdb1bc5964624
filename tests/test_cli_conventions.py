"""CLI conventions: repeated --set accumulates, --version, and --help without torch."""
import subprocess
import sys
from importlib.metadata import version

import pytest

from harma.cli import build_parser

HELP_WITHOUT_TORCH = """
import runpy, sys
sys.argv = ["harma", "--help"]
try:
    runpy.run_module("harma.cli", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("EXIT", code)
print("TORCH", "torch" in sys.modules)
"""


def test_repeated_set_accumulates():
    args = build_parser().parse_args(["train", "--config", "synthetic-tiny", "--set", "a=1", "--set", "b=2", "c=3"])
    assert args.overrides == ["a=1", "b=2", "c=3"]


def test_no_set_means_no_overrides_and_default_is_not_shared():
    parser = build_parser()
    parser.parse_args(["train", "--config", "x", "--set", "a=1"])
    assert parser.parse_args(["train", "--config", "x"]).overrides == []


def test_later_set_wins_for_the_same_key():
    from harma.config import load_config

    args = build_parser().parse_args(["train", "--config", "synthetic-tiny", "--set", "loss.gamma=1.5",
                                      "--set", "train.epochs=3", "--set", "loss.gamma=2.5"])
    cfg = load_config(args.config, args.overrides)
    assert cfg.loss.gamma == 2.5 and cfg.train.epochs == 3


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"harma {version('harma')}"


def test_help_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TORCH], capture_output=True, text=True, timeout=120)
    assert "EXIT 0" in out.stdout and "usage: harma" in out.stdout, out.stderr
    assert "TORCH False" in out.stdout


def test_a_reader_that_stops_early_is_not_a_traceback(tmp_path):
    """`harma model info ... | head -1`: the reader goes away; harma exits 141 quietly, as shell tools do."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "harma.cli", "model", "info", "--config", "synthetic-tiny"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    proc.stdout.close()                       # the reader is gone before harma writes a line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err
