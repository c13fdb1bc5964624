"""harma.report.stats against scipy and hand-computed values: t intervals, paired tests, Holm, Pareto."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harma.report.stats import holm, mean_ci, paired_test, pareto_mask


def test_mean_ci_matches_scipy_t_interval():
    x = [31.2, 33.9, 32.4, 30.8]
    s = mean_ci(x)
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    assert s.n == 4 and s.mean == pytest.approx(np.mean(x))
    assert (s.ci_low, s.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert s.sd == pytest.approx(np.std(x, ddof=1))


def test_mean_ci_hand_values_and_edge_cases():
    s = mean_ci([1.0, 2.0, 3.0, float("nan")])  # NaN dropped: mean 2, sd 1
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) = 4.3027
    assert s.n == 3 and s.ci_low == pytest.approx(2 - half) and s.ci_high == pytest.approx(2 + half)
    one = mean_ci([5.0])
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.ci_low)
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)


def test_paired_t_below_six_pairs_matches_scipy():
    x, y = [30.1, 31.5, 29.8, 32.0], [29.0, 30.9, 30.1, 30.5]
    res = paired_test(x, y)
    ref = sps.ttest_rel(x, y)
    assert res.test == "paired t" and res.n == 4
    assert res.p_value == pytest.approx(ref.pvalue) and res.statistic == pytest.approx(ref.statistic)


def test_wilcoxon_from_six_pairs_matches_scipy():
    rng = np.random.default_rng(3)
    y = rng.normal(30, 1, 8)
    x = y + rng.normal(0.8, 0.5, 8)
    res = paired_test(x, y)
    ref = sps.wilcoxon(x, y)
    assert res.test == "wilcoxon" and res.n == 8
    assert res.p_value == pytest.approx(ref.pvalue) and res.statistic == pytest.approx(ref.statistic)


def test_no_test_below_two_pairs_or_constant_differences():
    one = paired_test([1.0, float("nan")], [0.5, 2.0])
    assert one.test == "none" and one.n == 1 and math.isnan(one.p_value) and "no test possible" in one.note
    const = paired_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert const.test == "none" and math.isnan(const.p_value)


def test_holm_hand_computed():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.02, float("nan"), 0.04])  # m = 2: 0.04, then max(0.04, 0.04)
    assert out[0] == pytest.approx(0.04) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.2]) == pytest.approx([0.2]) and holm([]).size == 0


def test_pareto_mask_hand_points():
    cost = [1.0, 2.0, 2.0, 3.0, 4.0, float("nan")]
    score = [10.0, 12.0, 11.0, 12.0, 15.0, 99.0]
    # (2,11) beaten by (2,12); (3,12) beaten by (2,12); NaN never on the front
    assert pareto_mask(cost, score).tolist() == [True, True, False, False, True, False]
