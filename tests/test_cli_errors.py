"""Bad input to `harma train` and `harma eval` is one line on stderr naming the field or file, exit 2."""
from __future__ import annotations

import pytest
import torch

from harma.checkpoint import save_atomic, trainable_state
from harma.cli import main
from harma.config import load_config
from harma.model.build import build_model

TINY = ["--config", "synthetic-tiny"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_train_image_size_not_matching_the_arch(capsys, tmp_path):
    argv = ["train", *TINY, "--set", "data.image_size=64", f"train.out_dir={tmp_path / 'out'}"]
    assert main(argv) == 2
    line = _one_line(capsys)
    assert "data.image_size" in line and "64" in line and "32" in line
    assert not (tmp_path / "out").exists()


def test_eval_image_size_not_matching_the_arch(capsys, tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"")
    assert main(["eval", *TINY, "--set", "data.image_size=48", "--checkpoint", str(tmp_path / "ckpt.pt")]) == 2
    assert "data.image_size" in _one_line(capsys)


@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint\n" * 10])
def test_eval_garbage_checkpoint(capsys, tmp_path, content):
    path = tmp_path / "best.pt"
    path.write_bytes(content)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    assert str(path) in _one_line(capsys)


def test_eval_checkpoint_of_another_architecture(capsys, tmp_path):
    other = load_config("synthetic-tiny", ["adapter.bottleneck=8"])
    path = tmp_path / "best.pt"
    save_atomic({"trainable": trainable_state(build_model(other)), "epoch": 1}, path)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    line = _one_line(capsys)
    assert str(path) in line and "does not fit" in line


def test_eval_state_dict_of_another_architecture(capsys, tmp_path):
    """Not a harma checkpoint: read as the authors' format, whose shapes do not fit the tiny arch."""
    path = tmp_path / "foreign.pth"
    torch.save({"model": {"visual.conv1.weight": torch.zeros(3, 3, 2, 2)}}, path)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    line = _one_line(capsys)
    assert str(path) in line and "shape mismatch" in line


def test_eval_checkpoint_holding_a_bare_tensor(capsys, tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    assert str(path) in _one_line(capsys)


def test_eval_checkpoint_where_nothing_matches(capsys, tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    line = _one_line(capsys)
    assert str(path) in line and "none of its 1 tensor(s) matched" in line
