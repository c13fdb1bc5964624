"""`train.device` resolution (harma.distributed.resolve_device / use_device) with torch.cuda monkeypatched, so
the GPU paths are checked on a machine without one: a bare `cuda` always reaches torch.cuda.set_device with an
index, under a launcher it is the local rank, and a CUDA request without CUDA is one ConfigError."""
from __future__ import annotations

import pytest
import torch

from harma import cli
from harma.config import ConfigError
from harma.distributed import resolve_device, use_device


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
