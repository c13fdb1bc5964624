"""Ray's, Tune's, Optuna's and MLflow's own output, hidden while a study runs unless `--verbose` asks for it.

`library_output(verbose)` is a context manager around a driver's run.  Either way Tune's automatic CSV and
TensorBoard loggers are off (`TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1`, with `tune_loggers()` putting back only its
JSON logger, which its result grid reads): harma writes its own TensorBoard files per trial, so Ray's copies stop.
Quiet (the default): the loggers of ray, optuna, mlflow and alembic let only warnings and errors through (and Ray
leaves Python's logging alone: `configure_logging` is off in harma.tune.cluster), Optuna's verbosity is WARNING,
Tune's console output is its classic engine (`RAY_AIR_NEW_OUTPUT=0`: the new one prints its experiment box and paths
at any verbosity) with `silent_reporter()` as its progress reporter, Ray's note that token authentication is on (as
harma's local Ray always has it) and Tune's traceback of a failed trial (harma prints one line for it) are
dropped while Ray's warning that token authentication is off still shows, MLflow's "View run at URL"
lines are off (`MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT`), and deprecation, future and experimental warnings raised
by those libraries are ignored.  Verbose: their INFO logs are shown on stderr by their own handlers and nothing is
filtered.  Everything is put back when the block ends.  Trial processes' own output is Ray's `log_to_driver`
(harma.tune.cluster), off unless verbose.
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator

LIBRARIES = ("ray", "optuna", "mlflow", "alembic")
NO_AUTO_LOGGERS = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"
CLASSIC_OUTPUT = "RAY_AIR_NEW_OUTPUT"
MLFLOW_URL_LINES = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"    # its "View run ... at: URL" lines
DUPLICATES = {     # logger -> the starts of its records that say what a harma line already says
    "ray._private.authentication.authentication_token_setup": ("Token authentication is enabled",),
    "ray.tune.execution.tune_controller": ("Trial task failed for trial",),     # `[NAME] TRIAL failed (...)`
}
LIBRARY_MODULES = r"(ray|optuna|mlflow|alembic|sqlalchemy|tensorboardX|pyarrow)(\..*)?$"


@contextlib.contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
    """`os.environ[name] = value` inside the block; the old value (or its absence) back after it."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@contextlib.contextmanager
def _levels(level: int) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in LIBRARIES]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, saved):
            lg.setLevel(old)


class _Drop(logging.Filter):
    """Drops records whose message starts with one of `starts`."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


@contextlib.contextmanager
def _drop_duplicates() -> Iterator[None]:
    """Ray's note that token authentication is on (harma's local Ray always has it) and Tune's traceback of a
    failed trial (harma prints one line for it, and keeps the traceback in the trials row) are not shown."""
    filters = [(logging.getLogger(name), _Drop(starts)) for name, starts in DUPLICATES.items()]
    for logger, drop in filters:
        logger.addFilter(drop)
    try:
        yield
    finally:
        for logger, drop in filters:
            logger.removeFilter(drop)


def tune_loggers() -> list:
    """The one automatic Tune logger harma keeps: the JSON results file Tune's own result grid reads."""
    from ray.tune.logger import JsonLoggerCallback

    return [JsonLoggerCallback()]


def silent_reporter():
    """A Tune progress reporter that never reports (harma's live view shows the trials)."""
    from ray.tune import ProgressReporter

    class Silent(ProgressReporter):
        def should_report(self, trials, done=False) -> bool:
            return False

        def report(self, trials, done, *sys_info) -> None:
            return None

    return Silent()


def _filter_library_warnings() -> None:
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=LIBRARY_MODULES)
    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)


_VERBOSE: list[bool] = [False]         # inside library_output(verbose=True)


def verbose() -> bool:
    """Whether a driver's `--verbose` block is running (the libraries' INFO lines are wanted)."""
    return _VERBOSE[-1]


@contextlib.contextmanager
def library_output(verbose: bool = False) -> Iterator[None]:
    """Around a driver's run: the libraries' output hidden (quiet) or shown on stderr (verbose)."""
    if verbose:           # the libraries' own handlers at INFO (Ray configures its logging in ray.init)
        _VERBOSE.append(True)
        try:
            with env_var(NO_AUTO_LOGGERS, "1"), _levels(logging.INFO):
                yield
        finally:
            _VERBOSE.pop()
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        _filter_library_warnings()
        stack.enter_context(env_var(NO_AUTO_LOGGERS, "1"))
        stack.enter_context(env_var(CLASSIC_OUTPUT, "0"))
        stack.enter_context(env_var(MLFLOW_URL_LINES, "true"))
        stack.enter_context(_drop_duplicates())
        stack.enter_context(_levels(logging.WARNING))
        yield
