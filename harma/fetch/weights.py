"""Backbone weights from the Hub: fetch one (`harma fetch weights`), or find the verified cached copy a
`model.weights` name stands for (`cached_weights`, called through harma.model.weights when a model is built).

Fetching downloads into huggingface_hub's cache at the file's pinned revision and records the sha256 on first
fetch; finding reads only the cache (a run never downloads) and re-hashes the file against that record.
"""
from __future__ import annotations

from pathlib import Path

from harma.fetch.hub import hub_download
from harma.fetch.registry import CheckedFile, check_file
from harma.fetch.sources import HubFile, parse_weights_spec, weights_name


def fetch_command(file: HubFile) -> str:
    name = weights_name(file)
    return f"run `harma fetch weights {name}`"


def by_hand(file: HubFile) -> str:
    """Where a checkpoint downloaded by hand goes."""
    return (f"give its path as model.weights (e.g. --set model.weights=checkpoints/{Path(file.filename).name}), "
            f"or `harma fetch weights {weights_name(file)}` where the Hub can be reached")


def fetch_weights(spec: str, revision: str | None = None) -> CheckedFile:
    """Download (or find in the cache) the weights `spec` names, at `revision` when given, and check or
    record their sha256."""
    file = parse_weights_spec(spec, command_line=True).at(revision)
    path = hub_download(file, local_only=False, by_hand=by_hand(file))
    return check_file(file, path, may_record=True, again=fetch_command(file))


def cached_weights(file: HubFile, verify: bool = True) -> Path:
    """The cached file of `file`, found without any network access; with `verify`, its sha256 must match the
    record of its first fetch.  FetchError naming what to fetch or download otherwise."""
    path = hub_download(file, local_only=True, by_hand=by_hand(file))
    if verify:
        check_file(file, path, may_record=False, again=fetch_command(file))
    return path
