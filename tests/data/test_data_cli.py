from __future__ import annotations

import argparse
import os

from harma.cli import main
from harma.data.cli import add_data_commands


def test_synth_command(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path / "s"), "--images", "8", "--seed", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"image_root: {tmp_path / 's' / 'images'}"
    assert [line.split(":")[0] for line in lines] == ["image_root", "train_json", "val_json", "test_json"]
    assert all(os.path.exists(line.split(": ", 1)[1]) for line in lines)


def test_synth_command_error(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path / "s"), "--images", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harma: error: ") and "n_images must be >= 6" in err and len(err.splitlines()) == 1


def test_registers_on_a_parent_parser(tmp_path):
    parser = argparse.ArgumentParser()
    add_data_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "synth", "out", "--images", "9"])
    assert (args.command, args.data_command, args.out, args.images, args.seed) == ("data", "synth", "out", 9, 0)
    assert callable(args.func)
