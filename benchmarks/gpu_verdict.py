"""How the GPU acceptance scripts end: `run(name, main)` runs a benchmark's main and turns any error into one
verdict line on stdout (`NAME: FAILED: Type: message`, exit 1), never a traceback; the traceback goes to
`$GPU_CHECK_TRACEBACKS/NAME.txt` when gpu_check.sh sets that folder, so it is still there to read.  `emit`
prints one line and flushes it at once (a stage killed by its time limit keeps every row it printed).
"""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Callable


def emit(line: str = "") -> None:
    print(line, flush=True)


def one_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else '(no message)'}"


def keep_traceback(name: str) -> str:
    """Write the current exception's traceback where gpu_check.sh collects them; a note saying where."""
    folder = os.environ.get("GPU_CHECK_TRACEBACKS")
    if not folder:
        return ""
    path = Path(folder) / f"{name}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc())
    except OSError:
        return ""
    return f" (traceback: {path})"


def run(name: str, main: Callable[[], int | None]) -> None:
    """sys.exit(main()), with any error as one verdict line."""
    try:
        code = main()
    except Exception as exc:  # noqa: BLE001 - the point: one line whatever went wrong
        emit(f"{name}: FAILED: {one_line(exc)}{keep_traceback(name)}")
        sys.exit(1)
    sys.exit(code or 0)
