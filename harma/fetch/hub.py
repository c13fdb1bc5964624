"""The one place harma calls huggingface_hub: download a `HubFile` into the Hub cache, or find it there.

`hub_settings()` reads HF_ENDPOINT, HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE when called (not when
huggingface_hub was imported), and `hub_download` passes them to `hf_hub_download` explicitly, so a process
that changes them later is honoured too.  Downloads use huggingface_hub's cache (blobs named by their ETag,
which for large files is the content's sha256; a cut transfer is resumed by huggingface_hub with a Range
request).  Every failure is one `FetchError`: offline or unreachable names the URL to download by hand and
where to put the file; a missing repository, revision or file says which.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from harma.errors import FetchError
from harma.fetch.sources import HubFile

DEFAULT_ENDPOINT = "https://huggingface.co"
TRUE = ("1", "on", "yes", "true")


@dataclass(frozen=True)
class HubSettings:
    endpoint: str            # HF_ENDPOINT, default https://huggingface.co
    hf_home: Path            # HF_HOME, default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface
    hub_cache: Path          # HF_HUB_CACHE, default HF_HOME/hub
    offline: bool            # HF_HUB_OFFLINE


def hub_settings() -> HubSettings:
    env = os.environ
    xdg = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    home = Path(os.path.expanduser(env.get("HF_HOME") or os.path.join(xdg, "huggingface")))
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or str(home / "hub")
    return HubSettings(endpoint=(env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"), hf_home=home,
                       hub_cache=Path(os.path.expanduser(cache)),
                       offline=(env.get("HF_HUB_OFFLINE") or "").strip().lower() in TRUE)


def file_url(file: HubFile, settings: HubSettings | None = None) -> str:
    """The resolve URL of `file`: what `hf_hub_download` asks for, and what to download by hand."""
    endpoint = (settings or hub_settings()).endpoint
    kind = "datasets/" if file.repo_type == "dataset" else ""
    return f"{endpoint}/{kind}{file.repo_id}/resolve/{file.revision}/{file.filename}"


def hub_download(file: HubFile, local_only: bool, by_hand: str) -> Path:
    """The cached path of `file` (a snapshot file named by commit), downloading it unless `local_only` or
    HF_HUB_OFFLINE; `by_hand` says where a file downloaded by hand goes.  FetchError on every failure."""
    settings = hub_settings()
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise FetchError("huggingface_hub is not installed: pip install huggingface_hub") from None
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)      # its retry warnings are tracebacks; a failure is our one line
    try:
        path = hf_hub_download(file.repo_id, file.filename, repo_type=file.repo_type, revision=file.revision,
                               cache_dir=settings.hub_cache, endpoint=settings.endpoint,
                               local_files_only=local_only or settings.offline)
    except Exception as exc:  # huggingface_hub and httpx raise many types; each becomes one line
        raise FetchError(_explain(exc, file, settings, local_only, by_hand)) from None
    finally:
        hub_logger.setLevel(level)
    return Path(path)


def _explain(exc: Exception, file: HubFile, settings: HubSettings, local_only: bool, by_hand: str) -> str:
    from huggingface_hub import errors

    url = file_url(file, settings)
    if isinstance(exc, errors.LocalEntryNotFoundError):
        why = ("HF_HUB_OFFLINE is set" if settings.offline else "only the local cache is read here" if local_only
               else f"the Hub at {settings.endpoint} cannot be reached")
        return (f"{file.label} is not in the Hub cache {settings.hub_cache} and {why}; download {url} by hand "
                f"and {by_hand}")
    if isinstance(exc, errors.RevisionNotFoundError):
        return f"{file.repo_id}: revision {file.revision!r} not found on {settings.endpoint} ({url})"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return (f"{file.repo_id}: repository not found on {settings.endpoint}, or private or gated "
                f"(set HF_TOKEN) ({url})")
    if isinstance(exc, errors.EntryNotFoundError):
        return f"{file.repo_id}: no file {file.filename!r} at revision {file.revision} ({url})"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"download of {url} failed ({type(exc).__name__}: {first}); run the same command again, or download "
            f"it by hand and {by_hand}")


def snapshot_commit(path: Path, file: HubFile) -> str:
    """The commit a cached snapshot path belongs to (`.../snapshots/<commit>/<filename>`)."""
    depth = len(Path(file.filename).parts)
    return path.parts[-depth - 1]


def blob_etag(path: Path) -> str | None:
    """The ETag huggingface_hub named the cached blob after (the content's sha256 for large files), or None
    when the snapshot file is not a link to a blob."""
    real = Path(os.path.realpath(path))
    return real.name if real.parent.name == "blobs" else None
