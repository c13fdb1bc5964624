"""Write a trial's overrides (`harma.results.trials.row_overrides`) as the exact `--set` line that reproduces it.

Values are written so that the CLI's YAML parsing of `KEY=VALUE` gives back the same Python value (bools as
true/false, floats always with a decimal point or exponent YAML reads as a float, strings quoted when YAML
would read them as something else), and each token is shell-quoted when it needs to be.
"""
from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from typing import Any

import yaml

from harma.results.trials import is_missing


def format_value(value: Any) -> str:
    """The YAML text of one override value."""
    if hasattr(value, "item") and hasattr(value, "dtype"):
        value = value.item()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    text = str(value)
    try:
        same = yaml.safe_load(text) == text
    except yaml.YAMLError:
        same = False
    return text if same and text.strip() == text and text else json.dumps(text)


def set_tokens(params: Mapping[str, Any]) -> list[str]:
    """`KEY=VALUE` tokens, sorted by key, shell-quoted where needed; missing (NA) values are skipped."""
    tokens = []
    for key in sorted(params):
        value = params[key]
        if is_missing(value):
            continue
        tokens.append(shlex.quote(f"{key}={format_value(value)}"))
    return tokens


def train_command(base_config: str, params: Mapping[str, Any]) -> str:
    """`harma train --config BASE --set KEY=VALUE ...`: the line that reproduces a trial from its base config."""
    command = set_command(params)
    line = f"harma train --config {shlex.quote(base_config)}"
    return f"{line} {command}" if command else line


def set_command(params: Mapping[str, Any]) -> str:
    """`--set a.b=1 c.d=x` for the given parameters ('' when there are none)."""
    tokens = set_tokens(params)
    return "--set " + " ".join(tokens) if tokens else ""
