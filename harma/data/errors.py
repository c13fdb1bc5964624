"""The one error type of `harma.data`.

Every problem with user data (an annotation file that is not valid json, an entry missing a key or holding
the wrong type, a caption that is empty after cleaning, an image file that is missing or cannot be decoded,
a missing `data.*` setting) is raised as `DataError`, a `ValueError` whose message names the file, the entry
index and the key involved, so a user can go straight to the bad line.
"""
from __future__ import annotations


class DataError(ValueError):
    """Bad or missing data; the message names the file, entry index and key where they are known."""
