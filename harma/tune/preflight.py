"""Checks `harma study run|resume` makes after the study file loads and before Ray starts, each one line.

The results storage must be writable by this process: a local `storage` folder (or the folder that will hold
it), and the folder of a local Optuna storage (`sqlite:///PATH`, `journal:PATH`); a bucket is left to its first
write.  With an address other than `auto` (from `--address` or RAY_ADDRESS) there must be a Ray cluster
answering there (harma.tune.ray_probe), so a wrong port fails in seconds instead of a `ray.init` that retries
for minutes.  A search's Optuna storage file that exists must open.  The base config's data set must be there
(harma.data.check's quick part).  Errors are StudyErrors (or an OptunaStorageError, a DataError) naming the
study file and key, or ClusterErrors naming the address.
"""
from __future__ import annotations

import os

from harma.study.model import Study
from harma.errors import StudyError
from harma.writable import write_problem


def optuna_folder(study: Study) -> str | None:
    """The local folder of an explicit Optuna storage file (None: a database server, or the default file under
    `storage`)."""
    url = study.optuna_storage or ""
    if url.startswith("journal:"):
        return os.path.dirname(os.path.abspath(os.path.expanduser(url[len("journal:"):])))
    if url.startswith("sqlite:///"):
        return os.path.dirname(url[len("sqlite:///"):]) or "."
    return None


def check_storage(study: Study) -> None:
    """StudyError naming `storage` or `optuna_storage` when this process cannot write there."""
    places = [] if study.storage_is_remote else [("storage", study.storage_path())]
    folder = optuna_folder(study)
    if folder is not None:
        places.append(("optuna_storage", folder))
    for key, path in places:
        problem = write_problem(path)
        if problem:
            raise StudyError(f"{study.source}: {key}: expected a folder this process can write, got {path!r} "
                             f"({problem})")


def check_address(address: str | None) -> None:
    """ClusterError unless `address` (else RAY_ADDRESS) is empty, `auto`, or a Ray cluster that answers."""
    from harma.tune.ray_probe import check_is_ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        check_is_ray(address)


def check_optuna_storage(study: Study) -> None:
    """A search's Optuna storage that exists must open (a corrupt file is one error now, not inside Ray)."""
    if study.kind != "search":
        return
    folder_file = study.optuna_storage_url()
    for prefix in ("sqlite:///", "journal:"):
        if folder_file.startswith(prefix):
            path = os.path.expanduser(folder_file[len(prefix):].split("?", 1)[0])
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                return                     # nothing there yet: the run creates it
    from harma.tune.space import study_storage

    study_storage(study)


def check_study_data(study: Study) -> None:
    """The base run config's data set: annotation and image files there, no image in two splits (no decoding;
    a synthetic set is skipped): harma.data.check.  A DataError naming the study file otherwise."""
    from harma.data.check import check_data_inputs
    from harma.errors import DataError

    try:
        check_data_inputs(study.run_config().data)
    except DataError as exc:
        raise DataError(f"{study.source}: base: {exc}") from None


def preflight(study: Study, address: str | None) -> None:
    """check_storage, check_optuna_storage, check_address, then check_study_data."""
    check_storage(study)
    check_optuna_storage(study)
    check_address(address)
    check_study_data(study)
