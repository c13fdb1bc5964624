"""The type tests that config and study validation share: an int is not a bool, a number is an int or a
float but not a bool, a scalar is what a YAML override can hold (null, bool, int, float, string)."""
from __future__ import annotations

from typing import Any


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))
