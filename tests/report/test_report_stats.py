"""harma.report.stats against scipy and hand-computed values: t intervals, paired tests, Holm, Pareto."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harma.report.stats import clip_interval, holm, mean_ci, paired_test, pareto_mask


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


def test_no_test_below_three_pairs_or_constant_differences():
    one = paired_test([1.0, float("nan")], [0.5, 2.0])
    assert one.test == "none" and one.n == 1 and math.isnan(one.p_value) and one.note.startswith("1 seed: no test")
    two = paired_test([33.0, 34.1], [30.0, 31.5])  # scipy would give a df=1 t-test here: refused
    assert two.test == "none" and math.isnan(two.p_value) and two.note.startswith("2 seeds: no test")
    assert not math.isnan(sps.ttest_rel([33.0, 34.1], [30.0, 31.5]).pvalue)
    three = paired_test([33.0, 34.1, 32.2], [30.0, 31.5, 31.9])
    assert three.test == "paired t" and three.p_value == pytest.approx(
        sps.ttest_rel([33.0, 34.1, 32.2], [30.0, 31.5, 31.9]).pvalue)
    const = paired_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert const.test == "none" and math.isnan(const.p_value)


def test_clip_interval_to_percent_range():
    s = mean_ci([0.5, 4.5])  # mean 2.5, sd 2.828, t(0.975, 1) = 12.706: low = 2.5 - 25.41 < 0
    assert s.ci_low == pytest.approx(2.5 - 12.706204736 * 2.0, rel=1e-6)
    assert clip_interval(s.ci_low, s.ci_high) == (0.0, pytest.approx(s.ci_high), True)
    assert clip_interval(97.0, 103.0) == (97.0, 100.0, True)
    assert clip_interval(10.0, 20.0) == (10.0, 20.0, False)
    low, high, clipped = clip_interval(float("nan"), float("nan"))
    assert math.isnan(low) and not clipped


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
