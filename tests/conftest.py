"""Shared fixtures: tiny configs on CPU, a per-session synthetic data set, a scoped umask, and small tmpfs
mounts (full or read-only file systems) where this machine allows mounting."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from harma.config import load_config


@pytest.fixture(autouse=True)
def _torch_threads():
    torch.set_num_threads(2)
    yield


@pytest.fixture
def umask():
    """umask(value) sets the process umask for this test; the previous one comes back after it."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    from harma.data.synthetic import ensure_synthetic_dataset

    root = tmp_path_factory.mktemp("synth") / "set"
    ensure_synthetic_dataset(root, 120, seed=0)
    return root


@pytest.fixture
def tiny_cfg(synth_root, tmp_path):
    return load_config("synthetic-tiny", {
        "data.image_root": str(synth_root), "data.synthetic_images": 120, "train.out_dir": str(tmp_path / "run"),
        "train.epochs": 2})


@pytest.fixture
def read_only_dir(tmp_path):
    """A 0555 folder; skipped where this user can write into it anyway (root: os.geteuid() == 0)."""
    import os

    from harma.writable import write_problem

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.geteuid() == 0 and write_problem(ro) is None:
            pytest.skip("root ignores permission bits")
        yield ro
    finally:
        ro.chmod(0o755)


@pytest.fixture
def poison_loss(monkeypatch):
    """poison_loss(call, factor): the trainer's `call`-th loss (1-based) is multiplied by `factor` (nan, inf)."""
    import harma.train_step as train_step

    def install(call: int, factor: float) -> None:
        real, calls = train_step.harma_loss, {"n": 0}

        def poisoned(*args, **kwargs):
            parts = real(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == call:
                parts["loss"] = parts["loss"] * factor
            return parts

        monkeypatch.setattr(train_step, "harma_loss", poisoned)

    return install


@pytest.fixture
def one_line(capsys):
    """one_line() -> the single line a CLI error printed on stderr (the test fails on more, or a traceback)."""
    def read() -> str:
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        return lines[0]
    return read


@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, options) -> a fresh tmpfs mounted at tmp_path/name; unmounted at the end; skipped where
    mounting is not allowed (not root, no mount command)."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no mount command")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def fill_up():
    """fill_up(folder, leave) fills the file system holding `folder` with one file, `folder/filler`, until only
    about `leave` bytes are free; returns the filler's path."""
    def fill(folder: Path, leave: int) -> Path:
        stats = os.statvfs(folder)
        filler = Path(folder) / "filler"
        filler.write_bytes(b"\0" * max(stats.f_bavail * stats.f_frsize - leave, 0))
        return filler
    return fill
