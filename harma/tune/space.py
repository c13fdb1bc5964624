"""Optuna side of a study: the define-by-run search space, the sampler and the storage.

`suggest_overrides(trial, space, base_values)` is a pure function of an Optuna trial: it asks the trial for
each searched key in dependency order and returns the dotted overrides, nothing else (no config building,
no I/O), so `optuna.trial.FixedTrial` tests it without a study.  A key with a `when` condition is skipped
when the condition is false for the value suggested in this trial, or the base config's value when the
condition's key is not suggested.  `make_sampler` and `make_optuna_storage` build the Optuna objects a
study needs.  No Ray here.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import optuna
from optuna.samplers import TPESampler
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from sqlalchemy.exc import SQLAlchemyError

from harma.atomic import create_private_file
from harma.errors import HarmaError, OptunaStorageError
from harma.study.model import ParamSpec, Study, dependency_order
from harma.errors import StudyError

JOURNAL_PREFIX = "journal:"
SQLITE_PREFIX = "sqlite:///"


def suggest_overrides(trial: optuna.trial.BaseTrial, space: Mapping[str, ParamSpec],
                      base_values: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted overrides suggested by `trial` for `space`; conditional keys whose condition is false are absent."""
    values: dict[str, Any] = {}
    for key in dependency_order(space):
        spec = space[key]
        if spec.when is not None:
            ref = spec.when.key
            if ref in values:
                current = values[ref]
            elif ref in base_values:
                current = base_values[ref]
            else:
                raise KeyError(f"search.space.{key}.when.key: {ref!r} is neither suggested nor a base value")
            if not spec.when.holds(current):
                continue
        values[key] = _suggest(trial, spec)
    return values


def _suggest(trial: optuna.trial.BaseTrial, spec: ParamSpec) -> Any:
    if spec.type == "float":
        return trial.suggest_float(spec.key, spec.low, spec.high, log=spec.log)
    if spec.type == "int":
        return trial.suggest_int(spec.key, spec.low, spec.high, step=spec.step or 1, log=spec.log)
    return trial.suggest_categorical(spec.key, list(spec.choices))


def sampler_seed(seed: int | None, asked: int) -> int | None:
    """The sampler's seed once `asked` trials exist: the study's seed for a new study, else a seed derived
    from (seed, asked), so a resumed driver continues with fresh draws instead of replaying the first ones."""
    if seed is None or asked == 0:
        return seed
    return int(np.random.SeedSequence([seed, asked]).generate_state(1)[0])


def make_sampler(study: Study, asked: int = 0) -> TPESampler:
    """Multivariate TPE with the constant liar (concurrent trials see running ones as bad) and the study's
    sampler seed (`sampler_seed` once `asked` trials exist); `group=True` when the space has conditional keys,
    so that TPE models each set of keys that occur together jointly instead of falling back to independent
    sampling for the conditional ones."""
    if study.kind != "search" or study.search is None:
        raise StudyError(f"{study.source}: kind: a sampler needs kind search, got {study.kind!r}")
    conditional = any(spec.when is not None for spec in study.search.space.values())
    with warnings.catch_warnings():
        # `group` is still marked experimental in Optuna 5; the warning is noise for every study run.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return TPESampler(
            multivariate=True,
            group=conditional,
            constant_liar=True,
            seed=sampler_seed(study.search.sampler.seed, asked),
            n_startup_trials=study.search.sampler.n_startup_trials,
        )


def make_optuna_storage(url_or_journal: str) -> BaseStorage:
    """`journal:<path>` -> JournalStorage on a file; any other value is an RDB URL (sqlite:///, postgresql://,
    mysql://).  A journal or sqlite file that does not exist is created empty, 0600 in 0700 folders (see
    harma.atomic.create_private_file; SQLite takes an empty file as a new database)."""
    if url_or_journal.startswith(JOURNAL_PREFIX):
        path = Path(url_or_journal[len(JOURNAL_PREFIX):]).expanduser()
        create_private_file(path)
        return JournalStorage(JournalFileBackend(str(path)))
    if url_or_journal.startswith(SQLITE_PREFIX):
        db = url_or_journal[len(SQLITE_PREFIX):].split("?", 1)[0]
        if db and db != ":memory:" and not db.startswith("file:"):
            create_private_file(db)
        # Several processes may open the file; wait for a lock instead of failing at once.
        return RDBStorage(url_or_journal, engine_kwargs={"connect_args": {"timeout": 60}})
    return RDBStorage(url_or_journal)


def study_storage(study: Study) -> BaseStorage:
    """The Optuna storage of a search study (its `optuna_storage`, or the default sqlite file); a storage that
    cannot be opened (a corrupt or foreign file) is one OptunaStorageError naming it."""
    url = study.optuna_storage_url()
    try:
        storage = make_optuna_storage(url)
        storage.get_all_studies()          # reads the file: a corrupt one fails here, not inside Ray
    except HarmaError:
        raise
    except (SQLAlchemyError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OptunaStorageError(f"{study.source}: optuna_storage: {url} cannot be opened as an Optuna storage "
                                 f"({first}); move the file away to start the search over, or restore it") from None
    return storage
