"""Published numbers a study is compared with: `studies/NAME.paper.yaml`, written next to the study file.

A paper file holds `study` (the study's name), `source` (where the numbers were published), `split` (the split
they were measured on, `test` or `val`) and `metrics` (metric name -> value in percent, e.g. `r_mean: 52.3`;
the names are harma's, harma.metrics.METRIC_KEYS).  `find_paper(study_file, name)` looks for
`<study file stem>.paper.yaml` beside the study file, then `studies/<name>.paper.yaml`; a report page shows
the study's trials against these numbers.  Every error is a `StudyError` naming the file and the key.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harma.errors import StudyError
from harma.metrics import METRIC_KEYS
from harma.study.checker import read_yaml

SUFFIX = ".paper.yaml"
KEYS = ("study", "source", "split", "metrics")


@dataclass(frozen=True)
class PaperNumbers:
    file: str
    study: str
    source: str
    split: str                       # test | val
    metrics: dict[str, float]        # metric -> published value (percent)


def _fail(path: str, key: str, expected: str, got: Any) -> StudyError:
    return StudyError(f"{path}: {key}: expected {expected}, got {got!r}")


def load_paper(path: str | os.PathLike) -> PaperNumbers:
    path = os.fspath(path)
    data = read_yaml(Path(path))
    if not isinstance(data, dict) or set(data) - set(KEYS) or not set(KEYS) <= set(data):
        raise _fail(path, "(top level)", f"a mapping with exactly the keys {', '.join(KEYS)}", data)
    for key in ("study", "source"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise _fail(path, key, "a non-empty string", data[key])
    if data["split"] not in ("test", "val"):
        raise _fail(path, "split", "test or val", data["split"])
    metrics = data["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise _fail(path, "metrics", "a mapping of metric name -> published value", metrics)
    for name, value in metrics.items():
        if name not in METRIC_KEYS:
            raise _fail(path, f"metrics.{name}", f"one of {', '.join(METRIC_KEYS)}", name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100 \
                or not math.isfinite(value):
            raise _fail(path, f"metrics.{name}", "a number in [0, 100]", value)
    return PaperNumbers(path, data["study"], data["source"], data["split"],
                        {k: float(v) for k, v in metrics.items()})


def paper_path(study_file: str | os.PathLike | None, name: str) -> Path | None:
    """Where the paper file of study `name` is: beside its study file, else under studies/; None if neither."""
    candidates = []
    if study_file:
        p = Path(study_file)
        candidates.append(p.with_name(p.name[: -len(p.suffix)] + SUFFIX if p.suffix else p.name + SUFFIX))
    candidates.append(Path("studies") / f"{name}{SUFFIX}")
    return next((c for c in candidates if c.is_file()), None)


def find_paper(study_file: str | os.PathLike | None, name: str) -> PaperNumbers | None:
    """The paper numbers of study `name` (see paper_path), or None; a file for another study is an error."""
    path = paper_path(study_file, name)
    if path is None:
        return None
    paper = load_paper(path)
    if paper.study != name:
        raise _fail(str(path), "study", f"{name!r} (the study it sits beside)", paper.study)
    return paper
