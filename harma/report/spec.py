"""What a report page needs from a study file beyond the Parquet tables: the base config and its overrides
(to write `harma train` lines that rebuild a trial's exact RunConfig and to state what every arm starts
from), the arms as written, and the resources one trial held (to turn wall time into CPU core-hours).
`load_spec(path)` reads the file through `harma.study.parse.load_study` (which imports neither Ray nor Optuna)
and raises `SpecError` naming the file on any problem; `find_spec(study, path)` returns the explicit file's
spec, else `studies/<study>.yaml` of the working directory when it exists and names that study, else None
(the page then says which parts it cannot show); `train_command` is the reproduce line.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harma.errors import SpecError
from harma.results.overrides import set_tokens
from harma.results.trials import is_missing
from harma.results.overrides import train_command as reproduce_command


@dataclass(frozen=True)
class StudySpec:
    name: str
    source: str
    base_config: str
    base_set: dict[str, Any]
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0

    def trial_overrides(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Every override a trial ran with: the base overrides, then the trial's own parameters."""
        return {**self.base_set, **{k: v for k, v in params.items() if not is_missing(v)}}


def load_spec(path: str | os.PathLike) -> StudySpec:
    """The StudySpec of one study file; SpecError naming the file if it is missing or invalid."""
    from harma.config import ConfigError
    from harma.study.parse import load_study
    from harma.errors import StudyError

    if not Path(path).is_file():
        raise SpecError(f"study file {path}: not found")
    try:
        study = load_study(path)
    except (StudyError, ConfigError, OSError) as exc:
        raise SpecError(f"study file {path}: {exc}") from None
    return spec_of(study, str(path))


def spec_of(study, source: str | None = None) -> StudySpec:
    """The StudySpec of a loaded `harma.study.model.Study` (`source`: the file to name, default its own)."""
    return StudySpec(name=study.name, source=source or study.source, base_config=study.base_config,
                     base_set=dict(study.base_set), arms={a: dict(o) for a, o in study.arms.items()},
                     cpus_per_trial=float(study.resources.cpus_per_trial),
                     gpus_per_trial=float(study.resources.gpus_per_trial))


def find_spec(study: str, path: str | os.PathLike | None = None, results: str | None = None) -> StudySpec | None:
    """The explicit study file's spec (SpecError if it defines another study), else `studies/<study>.yaml`
    when it exists and defines `study` (SpecError if it is invalid), else the snapshot the study saved under
    the results root `results` when it ran (harma.study.snapshot), else None."""
    if path is not None:
        spec = load_spec(path)
        if spec.name != study:
            raise SpecError(f"study file {path}: defines study {spec.name!r}, not {study!r}")
        return spec
    default = Path("studies") / f"{study}.yaml"
    if not default.is_file():
        return _snapshot_spec(study, results) if results is not None else None
    spec = load_spec(default)  # an invalid file is an error, not a silently missing base config
    return spec if spec.name == study else None


def _snapshot_spec(study: str, results: str) -> StudySpec | None:
    from harma.study.snapshot import read_snapshot
    from harma.errors import StudyError

    try:
        saved = read_snapshot(results, study)
    except StudyError as exc:
        raise SpecError(str(exc)) from None
    return spec_of(saved) if saved is not None else None


def train_command(spec: StudySpec, params: Mapping[str, Any]) -> str:
    """`harma train --config BASE --set KEY=VALUE ...`: the base overrides and the trial's parameters, each
    written so that the CLI parses it back to the same value."""
    return reproduce_command(spec.base_config, spec.trial_overrides(params))


def base_values(spec: StudySpec) -> dict[str, Any]:
    """Every dotted key of the study's base config with its base overrides applied."""
    from harma.config import flat_dict, load_config

    return flat_dict(load_config(spec.base_config, spec.base_set))


def base_text(spec: StudySpec | None, unit: str = "arm") -> str:
    """One sentence saying what every arm (or trial) starts from, or that the page does not know."""
    if spec is None:
        return ("Base config: unknown, since no study file was found (pass --study FILE, or run `harma report` "
                f"in the folder holding studies/NAME.yaml); {unit} overrides are read from the results tables.")
    tokens = " ".join(set_tokens(spec.base_set)) or "none"
    return (f"Base config: {spec.base_config}, with the base overrides {tokens} (study file {spec.source}); "
            f"every {unit} adds its own overrides and its seed (train.seed) to these.")
