"""Study-load check of a search space: every value a trial can draw must build a valid run config.

Checking only the ends of a range misses rules that reject values in the middle: with `adapter.heads: 2`, an
int range 8..32 for `adapter.bottleneck` has valid ends but every odd width fails.  So each searched key is
built with each value it can take (the other keys at their base values): every choice of a categorical, both
ends of a float range (config rules on floats are bounds), and every value of an int range of up to
`DENSE_LIMIT` values; a longer int range is checked on its first and last `EDGE` values, which hold both ends
(every bound) and every remainder modulo any m <= EDGE the range has (every divisibility rule with a divisor
<= EDGE, such as a width that must be a multiple of the heads).  Building one config from the base takes about
15 microseconds, so this costs milliseconds.  Then every pair of searched keys is built together (at most
`PAIR_LIMIT` combinations a pair, a long int side thinned to its first and last values), skipping combinations
in which a `when` condition between the two leaves one of them unset.  Errors are StudyErrors naming the study
file, `search.space.<key>` and the bad value(s).
"""
from __future__ import annotations

from itertools import product
from typing import Any, Callable, Mapping

from harma.config import ConfigError, RunConfig
from harma.study.model import ParamSpec
from harma.errors import StudyError

DENSE_LIMIT = 4096       # an int range of up to this many values is checked value by value
EDGE = 2048              # a longer one: its first and last EDGE values
PAIR_LIMIT = 1024        # combinations built for one pair of keys
SHOWN = 8                # bad values listed in an error

Make = Callable[[Mapping[str, Any]], RunConfig]   # dotted overrides -> run config, or ConfigError


def int_values(low: int, high: int, step: int = 1) -> list[int]:
    """The values of an int range, or its first and last EDGE values when it has more than DENSE_LIMIT."""
    count = (high - low) // step + 1
    if count <= DENSE_LIMIT:
        return list(range(low, high + 1, step))
    return list(range(low, low + EDGE * step, step)) + list(range(high - (EDGE - 1) * step, high + 1, step))


def values_to_check(spec: ParamSpec) -> list:
    """Every choice, both float ends, or the int values of `int_values`."""
    if spec.type == "categorical":
        return list(spec.choices)
    if spec.type == "int":
        return int_values(spec.low, spec.high, spec.step or 1)
    return [spec.low, spec.high]


def _thin(values: list, size: int) -> list:
    """The first and last size // 2 values (all when there are no more than `size`)."""
    if len(values) <= size:
        return values
    half = max(1, size // 2)
    return values[:half] + values[-half:]


def _listing(shown: list[str], total: int, what: str) -> str:
    """`; 12 of the 25 values checked fail (9, 11, ...)`, or nothing when only one failed."""
    if len(shown) < 2:
        return ""
    text = ", ".join(shown[:SHOWN]) + (", ..." if len(shown) > SHOWN else "")
    return f"; {len(shown)} of the {total} {what} fail ({text})"


def _failures(make: Make, combos: list[dict[str, Any]]) -> list[tuple[dict[str, Any], ConfigError]]:
    bad = []
    for overrides in combos:
        try:
            make(overrides)
        except ConfigError as exc:
            bad.append((overrides, exc))
    return bad


def check_each_value(source: str, key: str, spec: ParamSpec, make: Make) -> None:
    """Build `key` at each of its values_to_check with every other key at its base value."""
    values = values_to_check(spec)
    bad = _failures(make, [{key: v} for v in values])
    if not bad:
        return
    (first, exc), listed = bad[0], [repr(ov[key]) for ov, _ in bad]
    more = _listing(listed, len(values), "values checked")
    raise StudyError(f"{source}: search.space.{key} (value {first[key]!r}): gives an invalid run config: "
                     f"{exc}{more}")


def _both_set(a: str, x: Any, b: str, y: Any, space: Mapping[str, ParamSpec]) -> bool:
    """False when a `when` condition of one key on the other leaves it unset at these values."""
    when_b, when_a = space[b].when, space[a].when
    if when_b is not None and when_b.key == a and not when_b.holds(x):
        return False
    return not (when_a is not None and when_a.key == b and not when_a.holds(y))


def pair_combos(a: str, b: str, space: Mapping[str, ParamSpec]) -> list[dict[str, Any]]:
    """The combinations of `a` and `b` to build: at most PAIR_LIMIT, the longer side thinned first."""
    va, vb = values_to_check(space[a]), values_to_check(space[b])
    while len(va) * len(vb) > PAIR_LIMIT and max(len(va), len(vb)) > 2:
        if len(va) >= len(vb):
            va = _thin(va, len(va) // 2)
        else:
            vb = _thin(vb, len(vb) // 2)
    return [{a: x, b: y} for x, y in product(va, vb) if _both_set(a, x, b, y, space)]


def check_pairs(source: str, space: Mapping[str, ParamSpec], make: Make) -> None:
    """Build every pair of searched keys together (see pair_combos)."""
    keys = list(space)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            combos = pair_combos(a, b, space)
            bad = _failures(make, combos)
            if not bad:
                continue
            first, exc = bad[0]
            more = _listing([f"{ov[a]!r}/{ov[b]!r}" for ov, _ in bad], len(combos), f"{a}/{b} combinations checked")
            raise StudyError(f"{source}: search.space.{a} (value {first[a]!r}) with search.space.{b} "
                             f"(value {first[b]!r}): gives an invalid run config: {exc}{more}; narrow the "
                             f"choices or add a `when` condition")


def check_space(source: str, space: Mapping[str, ParamSpec], make: Make) -> None:
    """Each key at each of its values, then every pair of keys (module docstring)."""
    for key, spec in space.items():
        check_each_value(source, key, spec, make)
    check_pairs(source, space, make)
