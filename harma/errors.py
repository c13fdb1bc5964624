"""Every harma error, in one place that imports nothing heavy: one `HarmaError` base carrying the exit code the
CLI gives it and whether a rerun of the same trial (same config, same seed) may cure it.

The CLI catches `HarmaError` once and prints its message as one line on stderr with `exit_code`; a trial
catches a `HarmaError` that a rerun cannot cure and reports it as a failure result (Tune never retries it),
while any other error propagates to Tune, which may retry it (a killed worker, a lost node, an out-of-memory).
`harma study resume` decides on the `error_type` a FAILED row recorded through `is_curable`, by class, never by
searching traceback text.  Each class also keeps the builtin base that code catching it used before (a
`ConfigError` is a `ValueError`, a `WriteError` an `OSError`).
"""
from __future__ import annotations

import errno


class HarmaError(Exception):
    """Base of every harma error: `exit_code` for the CLI, `curable` when a rerun may pass."""
    exit_code = 2
    curable = False


class ConfigError(HarmaError, ValueError):
    """A configuration value, key or file is invalid; the message names it and says what was expected."""


class DataError(HarmaError, ValueError):
    """Bad or missing data; the message names the file, entry index and key where they are known."""


class WeightsError(HarmaError, RuntimeError):
    """A backbone weights file is missing, unreadable or does not fit the arch."""


class FetchError(HarmaError, RuntimeError):
    """A weights file or data set cannot be fetched or fails its check (offline, unreachable, not found, a sha256
    that differs from the one recorded); the message names the file and what to download by hand, and where."""


class InjectionError(HarmaError, RuntimeError):
    """The backbone does not have the structure adapters are injected into."""


class CheckpointError(HarmaError, ValueError):
    """A checkpoint file cannot be read safely, or does not fit the model; the message names the file."""


class NonFiniteError(HarmaError, FloatingPointError):
    """The training loss, or the objective of an evaluation, became NaN or infinite."""


class GpuShareError(HarmaError, RuntimeError):
    """A packed trial (`resources.gpus_per_trial` < 1) ran out of GPU memory inside its share of the GPU: the
    same config on the same share runs out again, so a rerun cannot cure it; the message names the share."""
    curable = False


class StudyError(HarmaError, ValueError):
    """A study file (or a study's state) is invalid; the message names the file and the field."""


class StudyLockedError(StudyError):
    """Another live driver holds the study's lock."""


class ClusterError(HarmaError, RuntimeError):
    """The Ray cluster cannot be reached or cannot run this study as asked."""
    curable = True


class SpecError(HarmaError, ValueError):
    """A study file given to the report cannot be used; the message names the file."""


class ResultsError(HarmaError, ValueError):
    """A results command cannot be done as asked (unknown study, format, table or output); it says which."""


class RecordError(HarmaError, ValueError):
    """A trial record or epoch report does not fit the schema; the message names the field."""


class SchemaVersionError(HarmaError, RuntimeError):
    """A results file was written under a schema version this harma cannot read."""


class ResultsFileError(HarmaError, ValueError):
    """A results file cannot be read, or holds values no trial can have; the message names the file."""


class OptunaStorageError(HarmaError, RuntimeError):
    """A study's Optuna storage cannot be opened (corrupt, not a database, another format)."""


WRITE_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of its folder path is a file, not a folder",
    errno.EEXIST: "a file is in the way of a folder on its path",
}


class WriteError(HarmaError, OSError):
    """A file cannot be written (disk full, read-only, no permission, not a regular file); it names the file.

    Built like an OSError, `WriteError(errno, strerror, filename)`, so it pickles across processes.  A rerun
    may pass once space is freed or the permission fixed."""
    curable = True

    def __str__(self) -> str:
        reason = WRITE_REASONS.get(self.errno, self.strerror or "cannot write")
        return f"cannot write {self.filename}: {reason} ({errno.errorcode.get(self.errno, self.errno)})"


def _all_classes(base: type = HarmaError) -> dict[str, type]:
    found = {base.__name__: base}
    for sub in base.__subclasses__():
        found.update(_all_classes(sub))
    return found


def is_curable(error_type: str | None) -> bool:
    """Whether a FAILED trial whose error was of class `error_type` may pass on a rerun: a harma error says
    so itself; any other error (a killed worker, a lost node, an out-of-memory, no type recorded) may."""
    cls = _all_classes().get(error_type or "")
    return True if cls is None else bool(cls.curable)
