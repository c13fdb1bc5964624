"""What `model.weights` names, as a local file: the one function that turns a weights name into a path.

A local path (or null) is returned as given.  A catalogue name (`georsclip-vit-b-32`, `laion2b-vit-b-32`,
`openai-vit-b-32`, see harma.fetch.sources) or `hf:REPO:FILE[@REVISION]` is looked up in the Hugging Face
cache only, never downloaded, and its sha256 is checked against the one recorded when `harma fetch weights`
fetched it.  Any problem is a `WeightsError` naming `model.weights` and what to fetch or download.  No torch.
"""
from __future__ import annotations

from harma.errors import FetchError, WeightsError


def resolve_weights(value: str | None, verify: bool = True) -> str | None:
    """The local file `model.weights` = `value` stands for; `verify=False` skips hashing (a quick check that
    the file is there, as `harma train` makes before it starts)."""
    from harma.fetch.sources import parse_weights_spec
    from harma.fetch.weights import cached_weights

    try:
        file = parse_weights_spec(value)
        if file is None:
            return value
        return str(cached_weights(file, verify=verify))
    except FetchError as exc:
        raise WeightsError(f"model.weights: {value}: {exc}") from None
