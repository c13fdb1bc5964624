"""Bad input to `harma train` and `harma eval` is one line on stderr naming the field or file, exit 2."""
from __future__ import annotations

import pytest
import torch

from harma.checkpoint import save_atomic, trainable_state
from harma.cli import main
from harma.config import load_config
from harma.model.build import build_model

TINY = ["--config", "synthetic-tiny"]


def test_train_image_size_not_matching_the_arch(tmp_path, one_line):
    argv = ["train", *TINY, "--set", "data.image_size=64", f"train.out_dir={tmp_path / 'out'}"]
    assert main(argv) == 2
    line = one_line()
    assert "data.image_size" in line and "64" in line and "32" in line
    assert not (tmp_path / "out").exists()


def test_eval_image_size_not_matching_the_arch(tmp_path, one_line):
    (tmp_path / "ckpt.pt").write_bytes(b"")
    assert main(["eval", *TINY, "--set", "data.image_size=48", "--checkpoint", str(tmp_path / "ckpt.pt")]) == 2
    assert "data.image_size" in one_line()


@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint\n" * 10])
def test_eval_garbage_checkpoint(tmp_path, content, one_line):
    path = tmp_path / "best.pt"
    path.write_bytes(content)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    assert str(path) in one_line()


def test_eval_checkpoint_of_another_architecture(tmp_path, one_line):
    other = load_config("synthetic-tiny", ["adapter.bottleneck=8"])
    path = tmp_path / "best.pt"
    save_atomic({"trainable": trainable_state(build_model(other)), "epoch": 1}, path)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    line = one_line()
    assert str(path) in line and "does not fit" in line


def test_eval_state_dict_of_another_architecture(tmp_path, one_line):
    """Not a harma checkpoint: read as the authors' format, whose shapes do not fit the tiny arch."""
    path = tmp_path / "foreign.pth"
    torch.save({"model": {"visual.conv1.weight": torch.zeros(3, 3, 2, 2)}}, path)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    line = one_line()
    assert str(path) in line and "shape mismatch" in line


def test_eval_checkpoint_holding_a_bare_tensor(tmp_path, one_line):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    assert str(path) in one_line()


def test_eval_checkpoint_where_nothing_matches(tmp_path, one_line):
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    assert main(["eval", *TINY, "--checkpoint", str(path)]) == 2
    line = one_line()
    assert str(path) in line and "none of its 1 tensor(s) matched" in line
