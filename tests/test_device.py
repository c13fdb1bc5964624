"""`train.device` resolution (harma.runtime.resolve_device / use_device) with torch.cuda monkeypatched, so
the GPU paths are checked on a machine without one: a bare `cuda` always reaches torch.cuda.set_device with an
index, under a launcher it is the local rank, and a CUDA request without CUDA is one ConfigError.  TF32 is set
through the API every reader of it uses (each getter answers afterwards), by training and `harma eval` alike."""
from __future__ import annotations

import pytest
import torch

from harma import cli
from harma.config import ConfigError, TrainConfig
from harma.runtime import resolve_device, start, use_device


@pytest.fixture
def fake_cuda(monkeypatch):
    """A machine with `count` visible GPUs whose current device is `current`; records set_device calls."""
    state = {"count": 2, "current": 1, "set": []}

    def set_device(device):
        device = torch.device(device) if not isinstance(device, int) else torch.device("cuda", device)
        if device.index is None:  # what the real torch.cuda.set_device refuses
            raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:{device}")
        state["set"].append(device)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: state["count"])
    monkeypatch.setattr(torch.cuda, "current_device", lambda: state["current"])
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return state


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_cpu_and_auto_without_cuda(no_cuda):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cuda_is_one_config_error(no_cuda, name):
    with pytest.raises(ConfigError, match=rf"train.device='{name}': CUDA is not available on this machine"):
        resolve_device(name)


def test_bare_cuda_is_the_current_device(fake_cuda):
    assert use_device("cuda") == torch.device("cuda", 1)
    assert fake_cuda["set"] == [torch.device("cuda", 1)]


def test_auto_with_cuda_is_the_current_device(fake_cuda):
    fake_cuda["current"] = 0
    assert use_device("auto") == torch.device("cuda", 0)


def test_bare_cuda_under_a_launcher_is_the_local_rank(fake_cuda, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert use_device("cuda") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert use_device("cuda") == torch.device("cuda", 1)
    assert [d.index for d in fake_cuda["set"]] == [0, 1]


def test_explicit_index_wins_over_local_rank(fake_cuda, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert use_device("cuda:0") == torch.device("cuda", 0)


@pytest.mark.parametrize("name,env,needle", [("cuda:2", None, "CUDA device 2 requested"),
                                             ("cuda", "3", "LOCAL_RANK=3")])
def test_index_beyond_the_visible_devices_is_an_error(fake_cuda, monkeypatch, name, env, needle):
    if env is not None:
        monkeypatch.setenv("LOCAL_RANK", env)
    with pytest.raises(ConfigError, match=needle):
        use_device(name)
    assert fake_cuda["set"] == []


def test_cpu_never_touches_cuda(fake_cuda):
    assert use_device("cpu") == torch.device("cpu")
    assert fake_cuda["set"] == []


def test_cli_train_on_cuda_without_cuda_is_one_line_and_exit_2(no_cuda, tiny_cfg, capsys):
    code = cli.main(["train", "--config", "synthetic-tiny", "--set", "train.device=cuda",
                     f"data.image_root={tiny_cfg.data.image_root}", f"train.out_dir={tiny_cfg.train.out_dir}"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "train.device='cuda': CUDA is not available" in err


@pytest.mark.parametrize("bad", ["cuda:x", "cuda:", "gpu", "cuda:0:1", "CPU"])
def test_malformed_device_names_are_config_errors(bad):
    from harma.config import RunConfig, apply_overrides

    with pytest.raises(ConfigError, match=r"train.device: expected auto, cpu, cuda or cuda:N"):
        apply_overrides(RunConfig(), {"train.device": bad})


@pytest.fixture
def restore_tf32():
    """Put torch's global TF32 settings back as they were (through the same API) after the test."""
    matmul, cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    yield
    torch.set_float32_matmul_precision(matmul)
    torch.backends.cudnn.allow_tf32 = cudnn


@pytest.mark.parametrize("tf32,matmul", [(True, "high"), (False, "highest")])
def test_tf32_on_cuda_is_set_through_the_api_every_reader_uses(fake_cuda, restore_tf32, tf32, matmul):
    """After `start`, every getter answers (Inductor's max-autotune GEMM path reads them) and agrees."""
    torch.set_float32_matmul_precision("medium")                    # something else before, to see it change
    torch.backends.cudnn.allow_tf32 = not tf32
    device = start(TrainConfig(device="cuda", tf32=tf32))
    assert device == torch.device("cuda", 1) and fake_cuda["set"] == [device]
    assert torch.get_float32_matmul_precision() == matmul
    assert torch.backends.cuda.matmul.allow_tf32 is tf32
    assert torch.backends.cudnn.allow_tf32 is tf32


def test_tf32_setting_leaves_a_cpu_run_alone(no_cuda, restore_tf32):
    torch.set_float32_matmul_precision("medium")
    assert start(TrainConfig(device="cpu", tf32=True)) == torch.device("cpu")
    assert torch.get_float32_matmul_precision() == "medium"


def test_train_and_eval_both_start_through_runtime(tiny_cfg, monkeypatch):
    """The trainer (and so every study trial) and `harma eval` set the precision of `train.tf32` the same way."""
    import os

    from harma import runtime
    from harma.config import apply_overrides
    from harma.eval_checkpoint import evaluate_checkpoint
    from harma.train import train

    seen = []
    monkeypatch.setattr(runtime, "set_matmul_precision", lambda device, tf32: seen.append((device.type, tf32)))
    cfg = apply_overrides(tiny_cfg, {"train.epochs": 1, "train.tf32": False})
    summary = train(cfg)
    evaluate_checkpoint(cfg, os.path.join(summary.out_dir, "best.pt"), splits=("val",))
    assert seen == [("cpu", False), ("cpu", False)]
