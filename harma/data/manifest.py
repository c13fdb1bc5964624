"""The manifest `harma fetch data` leaves in an image root once a fetch is complete: its format, its file name,
and `read_manifest`, which the fetcher (to skip finished work) and `harma data check` (to say where a data set
came from) both read.  A missing, unreadable or foreign manifest reads as None."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST_NAME = ".harma-manifest.json"
MANIFEST_FORMAT = 1


def read_manifest(image_root: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest a complete fetch left in `image_root` (its format, and the set it names), or None."""
    try:
        data = json.loads((Path(image_root) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    valid = isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT and isinstance(data.get("set"), str)
    return data if valid else None
