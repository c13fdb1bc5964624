"""Study files written from dicts and loaded, for the study tests: `load` gives the Study, `load_error` the one-line
StudyError message that names the file (the test fails if the file loads)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harma.errors import StudyError
from harma.study.model import Study
from harma.study.parse import load_study


def load(data: dict, tmp_path: Path) -> Study:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_study(path)


def load_error(data: dict, tmp_path: Path) -> str:
    with pytest.raises(StudyError) as err:
        load(data, tmp_path)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "study.yaml") in message, message
    return message
