"""The one owner of the default results root, and cheap answers about a root that need no pyarrow.

`default_results_root()` is `$HARMA_RESULTS`, else `results` (read when called, so the environment of the
command that runs counts); every command's `--results` default, a study's `storage` default and the snapshot
lookup of `harma study status|resume NAME` ask it.  `study_names(root)` and `has_trials(root, name)` answer
from `os.listdir` for a local root (a usage error such as `harma results show nosuch` then costs no pyarrow or
pandas import), and list through pyarrow's file system only for an object-store URI.
"""
from __future__ import annotations

import os

RESULTS_ENV = "HARMA_RESULTS"
FALLBACK_ROOT = "results"
TABLES = ("trials", "epochs")
PARTITION = "study="
RESULTS_HELP = "results root: local path or URI (s3://, gs://); default $HARMA_RESULTS, else ./results"


def default_results_root() -> str:
    """`$HARMA_RESULTS` when set and not empty, else `results` (relative to the working folder)."""
    return os.environ.get(RESULTS_ENV) or FALLBACK_ROOT


def is_uri(root: str | os.PathLike) -> bool:
    """A root such as s3://bucket/prefix or gs://... (file:// counts as a URI too: pyarrow resolves it)."""
    return "://" in os.fspath(root)


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _local(root: str | os.PathLike) -> str:
    return os.path.expanduser(os.fspath(root))


def study_names(root: str | os.PathLike) -> list[str]:
    """Names of the studies with a trials or epochs partition under `root`, sorted (as ResultsStore.studies)."""
    if is_uri(root):
        return _uri_study_names(root)
    base, names = _local(root), set()
    for table in TABLES:
        for entry in _listdir(os.path.join(base, table)):
            if entry.startswith(PARTITION) and os.path.isdir(os.path.join(base, table, entry)):
                names.add(entry[len(PARTITION):])
    if not names and any(e.startswith(PARTITION) for e in _listdir(base)):
        raise table_folder_error(root)
    return sorted(names)


def _uri_study_names(root: str | os.PathLike) -> list[str]:
    """study_names of an object-store root, listed through pyarrow's file system."""
    from harma.results import fsio

    fs, base = fsio.resolve_root(root)
    return fs_study_names(fs, base, root)


def fs_study_names(fs, base: str, root: str | os.PathLike) -> list[str]:
    """The studies with a trials or epochs partition under `base` on the pyarrow file system `fs`, sorted; the
    table-folder error when `base` itself holds partitions (a trials or epochs folder given as the root)."""
    import pyarrow.fs as pafs

    from harma.results import fsio

    def partitions(folder: str) -> set[str]:
        return {info.base_name[len(PARTITION):] for info in fsio.list_dir(fs, folder)
                if info.type == pafs.FileType.Directory and info.base_name.startswith(PARTITION)}

    names = set().union(*(partitions(f"{base}/{table}") for table in TABLES))
    if not names and partitions(base):
        raise table_folder_error(root)
    return sorted(names)


def table_folder_error(root: str | os.PathLike) -> Exception:
    """The error for a root that holds `study=` folders itself: the trials (or epochs) folder of a root."""
    from harma.errors import ResultsError

    return ResultsError(f"results root {os.fspath(root)}: holds study= folders itself, so it is a table folder "
                        "(trials or epochs) of a results root; give the folder above it")


def has_trials(root: str | os.PathLike, study: str) -> bool:
    """Whether `root` holds a trials file of `study` (a visible `*.parquet` in its trials partition)."""
    if is_uri(root):
        from harma.results import fsio

        fs, base = fsio.resolve_root(root)
        return bool(fsio.parquet_files(fs, f"{base}/trials/{PARTITION}{study}"))
    folder = os.path.join(_local(root), "trials", PARTITION + study)
    return any(n.endswith(".parquet") and not n.startswith((".", "_")) for n in _listdir(folder))


def require_study(root: str | os.PathLike, study: str, what: str = "") -> None:
    """ResultsError `[what: ]no study 'NAME' under ROOT (studies: ...)` when `root` holds no such study."""
    from harma.errors import ResultsError

    names = study_names(root)
    if study not in names:
        raise ResultsError(f"{what + ': ' if what else ''}no study {study!r} under {os.fspath(root)} "
                           f"(studies: {', '.join(names) or 'none'})")
