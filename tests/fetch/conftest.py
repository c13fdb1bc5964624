"""Fixtures for the fetch tests: a loopback Hub (hub_server.FakeHub) with HF_ENDPOINT pointed at it and HF_HOME
in a temporary folder, a tiny open_clip checkpoint, and small RSICD-shaped Parquet files."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hub_data import parquet_bytes, rsicd_rows  # noqa: E402
from hub_server import FakeHub  # noqa: E402

HF_VARS = ("HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "XDG_CACHE_HOME",
           "HARMA_SKIP_DATA_CHECK")


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A started FakeHub; HF_ENDPOINT points at it and HF_HOME is tmp_path/hf (so is every cache file)."""
    server = FakeHub().start()
    for name in HF_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_checkpoint() -> bytes:
    """The state dict of the `tiny` open_clip arch (harma.model.build), saved with torch.save."""
    import torch

    from harma.model.build import build_clip

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(build_clip("tiny", quick_gelu=False).state_dict(), buf)
    return buf.getvalue()


@pytest.fixture
def rsicd_hub(hub):
    """The FakeHub serving a 6 / 3 / 3 image RSICD set at arampacha/rsicd; returns (hub, rows by split)."""
    from harma.fetch.sources import RSICD_PARQUET

    rows = {"train": rsicd_rows("train", 6, 0), "val": rsicd_rows("valid", 3, 100),
            "test": rsicd_rows("test", 3, 200)}
    for split, file in RSICD_PARQUET.items():
        hub.add(file.repo_id, file.filename, parquet_bytes(rows[split]), repo_type="dataset")
    return hub, rows
