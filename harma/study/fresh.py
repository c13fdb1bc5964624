"""The refusal of a new run of a study that already has results, answered before Ray or pyarrow is imported.

`check_fresh(study)` raises one StudyError naming the study file, the study and its results root when that root
holds a trials file of the study's name (a local root is listed with os.listdir; an object store is asked
through pyarrow), pointing at `harma study resume`.  The CLI asks it before it imports the Ray layer, and the
runner asks it again while it holds the study's lock.
"""
from __future__ import annotations

from harma.errors import StudyError
from harma.results.root import has_trials
from harma.study.model import Study


def check_fresh(study: Study) -> None:
    """StudyError when the study's results root already holds trials of a study of its name."""
    root = study.storage_path()
    if has_trials(root, study.name):
        raise StudyError(f"{study.source}: name: study {study.name!r} already has results under {root}; "
                         f"`harma study resume {study.name}` continues it, or give the study a new name")
