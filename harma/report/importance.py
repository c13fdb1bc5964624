"""Optuna parameter importances for a search study, read from the study's own Optuna storage.

The storage is the one the search wrote to (`sqlite:////abs/path/optuna.db`, `journal:<path>`, or a
database URL; by default harma.tune's `<results root>/optuna/<study>.db`) and the Optuna study name is the
harma study name.  Importances come from `optuna.importance.get_param_importances` with
Optuna's PED-ANOVA evaluator (deterministic, needs no scikit-learn); anything missing (no URL, no file, no
such study, Optuna not installed, too few completed trials) yields `None` and a reason for the page instead
of an exception.  A sqlite or journal file that does not exist is refused before Optuna sees it, since
Optuna would create an empty one there.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

SQLITE = "sqlite:///"
JOURNAL = "journal:"


def _file_of(url: str) -> Path | None:
    """The local file behind a sqlite URL or a `journal:<path>` storage (None for server databases)."""
    if url.startswith(SQLITE):
        return Path(url[len(SQLITE):].split("?", 1)[0])
    if url.startswith(JOURNAL):
        return Path(url[len(JOURNAL):]).expanduser()
    return None


def default_storage(results_root: str, study_name: str) -> str | None:
    """harma.tune's default Optuna storage for a local results root, `sqlite:///<root>/optuna/<name>.db`,
    if that file exists (None otherwise, and for object-store roots)."""
    if "://" in results_root and not results_root.startswith("file://"):
        return None
    root = Path(results_root[len("file://"):] if results_root.startswith("file://") else results_root)
    db = root.expanduser().resolve() / "optuna" / f"{study_name}.db"
    return f"{SQLITE}{db}" if db.is_file() else None


def _open_storage(url: str):
    if url.startswith(JOURNAL):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(_file_of(url))))
    return url


def param_importances(storage_url: str | None, study_name: str) -> tuple[pd.DataFrame | None, str]:
    """(DataFrame[param, importance] sorted descending, description) or (None, why it is unavailable)."""
    if not storage_url:
        return None, ("no Optuna storage was found (pass --optuna-storage URL; harma.tune's default is "
                      "<results root>/optuna/<study>.db), so importances are unavailable")
    path = _file_of(storage_url)
    if path is not None and not path.is_file():
        return None, f"Optuna storage {storage_url} does not exist, so importances are unavailable"
    try:
        import optuna
    except ImportError:
        return None, "Optuna is not installed, so importances are unavailable"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=_open_storage(storage_url))
        evaluator_cls = getattr(optuna.importance, "PedAnovaImportanceEvaluator", None)
        evaluator = evaluator_cls() if evaluator_cls is not None else None
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except Exception as exc:  # optuna raises KeyError, ValueError, RuntimeError... for unusable studies
        return None, f"importances are unavailable: {type(exc).__name__}: {exc}"
    if not values:
        return None, "importances are unavailable: Optuna returned none (too few completed trials?)"
    frame = pd.DataFrame({"param": list(values), "importance": [float(v) for v in values.values()]})
    frame = frame.sort_values(["importance", "param"], ascending=[False, True], kind="stable")
    name = type(evaluator).__name__ if evaluator is not None else "default importance evaluator"
    return frame.reset_index(drop=True), (
        f"optuna.importance.get_param_importances with {name} over the completed trials of Optuna study "
        f"'{study_name}' (importances sum to 1)")

