"""Study snapshots: the study as it ran, kept in its results storage, so status and resume need no study file.

When a study runs, `save_study_snapshot(study)` writes two files under its results root (atomically on a local
disk, one put each on a bucket): `snapshots/<name>/base.yaml`, the base config fully resolved (every key, before
`base.set`), then `snapshots/<name>/study.yaml`, the study written back as a study file whose `base.config` is
that `base.yaml`.  Loading the snapshot therefore builds the same run configs even after the original study
file or base config file changed or went away.  `find_study(name, results)` loads the study file
(`studies/<name>.yaml` for a bare name) when it exists, else the snapshot under `results` (default
`$HARMA_RESULTS`, else `results`, what `storage` defaults to), with `storage` set to the root it was found under.
On resume (`resume=True`) a study file is compared with its snapshot and refused, naming what differs, when the
change alters what the trials run: kind, seeds, objective, scheduler, Optuna storage, search space or sampler,
arms, replicate, workers per trial, or any key of the resolved base run config except those a single run may change when it
resumes (harma.config.RESUME_FREE_KEYS, less train.epochs).  resources (other than workers_per_trial),
max_concurrent, num_samples, warm_start, storage and tracking may change.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harma import config as hconfig
from harma.results.root import default_results_root, is_uri, study_names
from harma.schedulers.registry import scheduler_data
from harma.study.model import NAME_RE, ParamSpec, Search, Study
from harma.study.parse import load_study, resolve_study_path
from harma.errors import StudyError
from harma.terms import SEED_KEY

if TYPE_CHECKING:
    import pyarrow.fs as pafs

SNAPSHOTS = "snapshots"
STUDY_FILE = "study.yaml"
BASE_FILE = "base.yaml"
FREE_BASE_KEYS = hconfig.RESUME_FREE_KEYS - {"train.epochs"}   # base config keys that do not change a trial
SHOWN = 6


class _Dumper(yaml.SafeDumper):
    """Quotes strings the study loader would read as floats (`1e-5`), so a snapshot reads back the same."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                              list("-+0123456789"))


# ------------------------------------------------------------------------------------- study -> YAML data

def _param_data(spec: ParamSpec) -> dict[str, Any]:
    if spec.type == "categorical":
        data: dict[str, Any] = {"type": spec.type, "choices": list(spec.choices)}
    else:
        data = {"type": spec.type, "low": spec.low, "high": spec.high, "log": spec.log}
        if spec.type == "int":
            data["step"] = spec.step
    if spec.when is not None:
        data["when"] = dataclasses.asdict(spec.when)
    return data


def _search_data(search: Search) -> dict[str, Any]:
    data: dict[str, Any] = {"space": {k: _param_data(s) for k, s in search.space.items()},
                            "sampler": dataclasses.asdict(search.sampler)}
    if search.warm_start is not None:
        data["warm_start"] = dataclasses.asdict(search.warm_start)
    return data


def study_data(study: Study, base_config: str = BASE_FILE) -> dict[str, Any]:
    """The study as the mapping of a study file (what parse_study reads back to an equal Study)."""
    data: dict[str, Any] = {
        "name": study.name, "kind": study.kind, "base": {"config": base_config, "set": dict(study.base_set)},
        "objective": dataclasses.asdict(study.objective), "resources": dataclasses.asdict(study.resources),
        "scheduler": scheduler_data(study.scheduler), "storage": study.storage,
        "optuna_storage": study.optuna_storage, "tracking": dataclasses.asdict(study.tracking)}
    seeds = None if SEED_KEY in study.base_set else list(study.seeds)   # else seeds come from base.set

    if study.kind == "replicate":
        rep = study.replicate
        data["replicate"] = {"from": rep.source, "top_k": rep.top_k, **({"seeds": seeds} if seeds else {})}
    elif seeds:
        data["seeds"] = seeds
    if study.max_concurrent is not None:
        data["max_concurrent"] = study.max_concurrent
    if study.kind == "search":
        data["num_samples"] = study.num_samples
        data["search"] = _search_data(study.search)
    if study.kind == "ablation":
        data["arms"] = {arm: dict(overrides) for arm, overrides in study.arms.items()}
    return data


def snapshot_texts(study: Study) -> tuple[str, str]:
    """(study.yaml text, base.yaml text) of the study's snapshot."""
    header = (f"# Snapshot of study {study.name}, saved when it ran, from {study.source or 'a Study object'}.\n"
              f"# Its base config ({study.base_config}) is resolved in {BASE_FILE} next to this file.\n"
              f"# `harma study status|resume {study.name}` read it when no study file is found.\n")
    text = header + yaml.dump(study_data(study), Dumper=_Dumper, sort_keys=False)
    base = yaml.dump(hconfig.to_dict(hconfig.load_config(study.base_config)), Dumper=_Dumper, sort_keys=False)
    return text, base


# ------------------------------------------------------------------------------------------- comparing

def trial_fields(study: Study) -> dict[str, Any]:
    """What a study's trials run: a change in any of these makes resumed trials differ from finished ones."""
    search = study.search
    fields = {"kind": study.kind, "seeds": study.seeds, "objective": study.objective,
              "optuna_storage": study.optuna_storage,
              "search.sampler": search.sampler if search else None, "replicate": study.replicate,
              "resources.workers_per_trial": study.resources.workers_per_trial}
    fields.update({f"scheduler.{k}": v for k, v in scheduler_data(study.scheduler).items()})
    fields.update({f"search.space.{k}": spec for k, spec in (search.space.items() if search else ())})
    fields.update({f"arms.{arm}": overrides for arm, overrides in study.arms.items()})
    fields.update({f"base config {k}": v for k, v in study.base_values().items()
                   if k not in FREE_BASE_KEYS and k != SEED_KEY})
    return fields


def _all_fields(study: Study) -> dict[str, Any]:
    """trial_fields and everything else a snapshot keeps (for the round-trip check)."""
    return {**trial_fields(study), "scheduler": study.scheduler, "name": study.name, "resources": study.resources,
            "num_samples": study.num_samples, "max_concurrent": study.max_concurrent, "base.set": study.base_set,
            "search.warm_start": study.search.warm_start if study.search else None, "tracking": study.tracking}


def _spec_text(spec: ParamSpec) -> str:
    """`float 1e-05..0.03 log`, `int 8..32 step 8`, `choices [0.0, 0.5]`, with ` when KEY OP VALUE`."""
    if spec.type == "categorical":
        text = f"choices {list(spec.choices)!r}"
    else:
        text = f"{spec.type} {spec.low!r}..{spec.high!r}" + (f" step {spec.step}" if (spec.step or 1) > 1 else "") \
            + (" log" if spec.log else "")
    return text + (f" when {spec.when.key} {spec.when.op} {spec.when.value!r}" if spec.when else "")


_ABSENT = object()


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "(none)"
    text = _spec_text(value) if isinstance(value, ParamSpec) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`key: old -> new` for each key whose value differs (`(none)` where one side lacks it)."""
    return [f"{k}: {_shown(old.get(k, _ABSENT))} -> {_shown(new.get(k, _ABSENT))}"
            for k in dict.fromkeys([*old, *new]) if old.get(k, _ABSENT) != new.get(k, _ABSENT)]


# --------------------------------------------------------------------------------------- reading, writing

def snapshot_path(root: str, name: str, file: str = STUDY_FILE) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) of a snapshot file of study `name` under the results root `root` (imports pyarrow)."""
    from harma.results import fsio

    fs, base = fsio.resolve_root(root)
    return fs, f"{base}/{SNAPSHOTS}/{name}/{file}"


def local_snapshot_path(root: str, name: str, file: str = STUDY_FILE) -> str:
    """The absolute path of a snapshot file under a local results root (what snapshot_path gives, no pyarrow)."""
    return str(Path(os.fspath(root)).expanduser().resolve() / SNAPSHOTS / name / file)


def _read(fs: pafs.FileSystem, path: str) -> str:
    with fs.open_input_stream(path) as fh:
        return fh.read().decode()


def read_snapshot(root: str, name: str) -> Study | None:
    """The study saved under `root`, with `storage` set to `root`; None when there is no snapshot.  A local root
    is looked at with os.path (no pyarrow), an object store through pyarrow."""
    if not is_uri(root):
        path = local_snapshot_path(root, name)
        return dataclasses.replace(load_study(path), storage=os.fspath(root)) if os.path.isfile(path) else None
    import pyarrow.fs as pafs

    from harma.results import fsio

    fs, path = snapshot_path(root, name)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    if not fsio.is_local(fs):   # load_study reads local files: copy both to a folder that outlives this call
        folder = Path(tempfile.mkdtemp(prefix=f"harma-snapshot-{name}-"))
        (folder / BASE_FILE).write_text(_read(fs, snapshot_path(root, name, BASE_FILE)[1]))
        (folder / STUDY_FILE).write_text(_read(fs, path))
        path = str(folder / STUDY_FILE)
    return dataclasses.replace(load_study(path), storage=os.fspath(root))


def _check_round_trip(study: Study, text: str, base: str) -> None:
    with tempfile.TemporaryDirectory(prefix="harma-snapshot-") as folder:
        Path(folder, BASE_FILE).write_text(base)
        Path(folder, STUDY_FILE).write_text(text)
        diffs = differences(_all_fields(study), _all_fields(load_study(Path(folder, STUDY_FILE))))
    if diffs:
        raise StudyError(f"{study.source}: the snapshot of study {study.name!r} does not read back the same "
                         f"study ({'; '.join(diffs[:SHOWN])}); this is a harma bug, please report it")


def check_same_trials(study: Study, saved: Study) -> None:
    """StudyError when `study` differs from its snapshot `saved` in what its trials run (module docstring)."""
    diffs = differences(trial_fields(saved), trial_fields(study))
    if diffs:
        more = f" and {len(diffs) - SHOWN} more" if len(diffs) > SHOWN else ""
        raise StudyError(f"{study.source}: differs from the snapshot saved when study {study.name!r} ran "
                         f"({saved.source}) in what its trials run: {'; '.join(diffs[:SHOWN])}{more}; restore it, "
                         f"resume from the snapshot (move the study file away), or run it under a new name")


def save_study_snapshot(study: Study, resume: bool = False) -> str | None:
    """Write the study's snapshot into its results storage (module docstring) and return the study.yaml path.
    With `resume`, first refuse a study that differs from the snapshot already there in what trials run.
    Without, write nothing (and return None) when the storage already holds results of a study of this name:
    the runner refuses that run, and the snapshot there stays the one of the study that made them."""
    from harma.results import fsio

    root = study.storage_path()
    if resume:
        saved = read_snapshot(root, study.name)
        if saved is not None:
            check_same_trials(study, saved)
    elif study.name in study_names(root):
        return None
    text, base = snapshot_texts(study)
    _check_round_trip(study, text, base)
    fs, path = snapshot_path(root, study.name)
    fsio.write_bytes(fs, snapshot_path(root, study.name, BASE_FILE)[1], base.encode())
    fsio.write_bytes(fs, path, text.encode())
    return path


def find_study(name_or_path: str | os.PathLike, results: str | None = None, resume: bool = False) -> Study:
    """The study of a file, or of a bare name: `studies/<name>.yaml`, else its snapshot under `results`
    (default: harma.results.root.default_results_root()).  With `resume`, `results` (when given) replaces the
    storage of a study read from a file, and a study file that differs from its snapshot in what trials run is
    refused (check_same_trials)."""
    path = resolve_study_path(name_or_path)
    name = os.fspath(name_or_path)
    if path.is_file() or not (NAME_RE.fullmatch(name) and path == Path("studies") / f"{name}.yaml"):
        study = load_study(path)
        if resume:
            if results is not None:
                study = dataclasses.replace(study, storage=results)
            saved = read_snapshot(study.storage_path(), study.name)
            if saved is not None:
                check_same_trials(study, saved)
        return study
    root = results or default_results_root()
    saved = read_snapshot(root, name)
    if saved is None:
        where = snapshot_path(root, name)[1] if is_uri(root) else local_snapshot_path(root, name)
        raise StudyError(f"study file {path}: not found, and no snapshot of study {name!r} under results root "
                         f"{root} ({where}); give the study file, or --results ROOT where the study ran")
    return saved
