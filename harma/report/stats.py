"""Small statistics for the report pages, each a pure function of numbers tested against scipy or hand values.

`mean_ci` gives the mean and a two-sided Student-t confidence interval over seeds, and `clip_interval` keeps
an interval of a bounded metric (a recall in %) inside its range; `paired_test` compares two arms over
matching seeds (Wilcoxon signed-rank from `WILCOXON_MIN_PAIRS` pairs up, because with fewer pairs its smallest
two-sided p-value is above 0.05, else a paired t-test, and no test below `MIN_TEST_PAIRS` pairs, where a
t-test has one degree of freedom and its p-value rests on a single spread estimate); `holm` is the
Holm step-down adjustment written out here; `pareto_mask` marks the points no other point beats on both a
cost to minimise and a score to maximise.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

WILCOXON_MIN_PAIRS = 6
MIN_TEST_PAIRS = 3
PERCENT_RANGE = (0.0, 100.0)
CI_METHOD = "Student-t interval: mean ± t(0.975, n−1) · s / √n"


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class PairedTest:
    n: int
    test: str          # "wilcoxon", "paired t" or "none"
    statistic: float
    p_value: float
    note: str


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[np.isfinite(arr)]


def mean_ci(values: Sequence[float], level: float = 0.95) -> Summary:
    """Mean, sample sd and t-interval of the finite values (NaN interval below 2 values)."""
    x = _finite(values)
    n = int(x.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def paired_test(x: Sequence[float], y: Sequence[float], min_wilcoxon: int = WILCOXON_MIN_PAIRS) -> PairedTest:
    """Two-sided paired test of x against y (already aligned pairwise, NaN pairs dropped)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n < MIN_TEST_PAIRS:
        return PairedTest(n, "none", math.nan, math.nan, no_test_note(n))
    diff = a - b
    if np.all(diff == diff[0]):
        return PairedTest(n, "none", math.nan, math.nan, "all paired differences are equal: test undefined")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n >= min_wilcoxon:
            res = stats.wilcoxon(a, b, alternative="two-sided")
            return PairedTest(n, "wilcoxon", float(res.statistic), float(res.pvalue), "")
        res = stats.ttest_rel(a, b, alternative="two-sided")
        return PairedTest(n, "paired t", float(res.statistic), float(res.pvalue),
                          f"n < {min_wilcoxon}: paired t-test instead of Wilcoxon")


def no_test_note(n: int) -> str:
    """'2 seeds: no test' — the words used in cells and figures when there are too few pairs."""
    return f"{n} seed{'' if n == 1 else 's'}: no test (needs ≥ {MIN_TEST_PAIRS} paired seeds)"


def clip_interval(low: float, high: float, bounds: tuple[float, float] = PERCENT_RANGE
                  ) -> tuple[float, float, bool]:
    """(low, high) cut to `bounds`, and whether anything was cut (NaN stays NaN, unclipped)."""
    if math.isnan(low) or math.isnan(high):
        return low, high, False
    lo, hi = max(low, bounds[0]), min(high, bounds[1])
    return lo, hi, (lo, hi) != (low, high)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count towards m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def pareto_mask(cost: Sequence[float], score: Sequence[float]) -> np.ndarray:
    """True where no other point has cost <= and score >= with at least one strict (NaN: False)."""
    c, s = np.asarray(cost, dtype=float), np.asarray(score, dtype=float)
    ok = np.isfinite(c) & np.isfinite(s)
    mask = np.zeros(c.shape, dtype=bool)
    for i in np.flatnonzero(ok):
        better = ok & (c <= c[i]) & (s >= s[i]) & ((c < c[i]) | (s > s[i]))
        mask[i] = not better.any()
    return mask
