"""What every part of a study file is checked with: a YAML loader that reads `1e-5` as a float and refuses
duplicate keys (`read_yaml`), and `Checker`, whose methods take a key path and a value and return it typed or
raise one StudyError naming the file, the key path and what was expected."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from harma import config as hconfig
from harma.errors import StudyError
from harma.study.model import NAME_MAX, NAME_RE, NAME_RULE
from harma.validate import is_int as _is_int
from harma.validate import is_num as _is_num

# ------------------------------------------------------------------------------------------- YAML loading

class _StudyLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-5` as a float (YAML 1.1 wants `1.0e-5`) and rejects duplicate keys."""


_StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StudyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise StudyError(f"study file {path}: not found")
    try:
        return yaml.load(path.read_text(), Loader=_StudyLoader)
    except yaml.YAMLError as exc:
        raise StudyError(f"study file {path}: not valid YAML ({exc})") from None


# ----------------------------------------------------------------------------------------------- checking

_MISSING = object()


class Checker:
    """Small typed readers that raise StudyError naming the file and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: Any = _MISSING) -> StudyError:
        tail = "" if got is _MISSING else f", got {got!r}"
        return StudyError(f"{self.source}: {key}: expected {expected}{tail}")

    def mapping(self, key: str, value: Any, allowed: Sequence[str], required: Sequence[str] = ()) -> dict:
        label = key or "study"
        if not isinstance(value, Mapping):
            raise self.fail(label, f"a mapping with keys {', '.join(allowed)}", value)
        prefix = f"{key}." if key else ""
        for k in value:
            if k not in allowed:
                raise StudyError(f"{self.source}: unknown key {prefix}{k}; valid keys"
                                 f"{' of ' + key if key else ''}: {', '.join(allowed)}")
        for k in required:
            if k not in value:
                raise StudyError(f"{self.source}: {prefix}{k}: required but missing")
        return dict(value)

    def string(self, key: str, value: Any, what: str = "a non-empty string") -> str:
        if not isinstance(value, str) or value == "":
            raise self.fail(key, what, value)
        return value

    def name(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not NAME_RE.fullmatch(value):
            raise self.fail(key, NAME_RULE, value)
        if len(value) > NAME_MAX:
            raise StudyError(f"{self.source}: {key}: expected a name of at most {NAME_MAX} characters (it becomes "
                             f"part of file names), got {len(value)} characters: {value[:40]!r}...")
        return value

    def choice(self, key: str, value: Any, options: Sequence[str]) -> str:
        if value not in options:
            raise self.fail(key, f"one of {', '.join(options)}", value)
        return value

    def integer(self, key: str, value: Any, minimum: int | None = None) -> int:
        if not _is_int(value) or (minimum is not None and value < minimum):
            raise self.fail(key, "an int" + (f" >= {minimum}" if minimum is not None else ""), value)
        return value

    def number(self, key: str, value: Any, minimum: float | None = None, strict: bool = False) -> float:
        ok = _is_num(value) and math.isfinite(value)
        if ok and minimum is not None:
            ok = value > minimum if strict else value >= minimum
        if not ok:
            bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
            raise self.fail(key, f"a number{bound}", value)
        return float(value)

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def seeds(self, key: str, value: Any) -> tuple[int, ...]:
        if not isinstance(value, list) or not value or not all(_is_int(s) for s in value):
            raise self.fail(key, "a non-empty list of ints", value)
        if len(set(value)) != len(value):
            raise self.fail(key, "distinct seeds", value)
        return tuple(value)

    def overrides(self, key: str, value: Any) -> dict[str, Any]:
        """A mapping of dotted config keys; `null` is an empty mapping."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key, "a mapping of dotted config keys (e.g. adapter.bottleneck: 64)", value)
        valid = hconfig.valid_keys()
        for k in value:
            if k not in valid:
                raise StudyError(f"{self.source}: {key}.{k}: unknown config key; valid keys: {', '.join(valid)}")
        return dict(value)
