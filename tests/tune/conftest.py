"""Fixtures for the study tests: a scratch folder with a studies/ directory."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def scratch(tmp_path) -> Path:
    (tmp_path / "studies").mkdir()
    return tmp_path
