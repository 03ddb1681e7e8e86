"""The prompt study's small-sample statistics: exact values, Holm, intervals, and null simulations of the level."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from motion.eval.confidence import bootstrap_difference
from motion.study.statistics import (
    cliffs_delta,
    difference_ci,
    fisher_exact,
    fisher_min_p,
    holm,
    permutation_test,
    power_two_sample,
    proportion_difference_ci,
    stratified_cliffs_delta,
    stratified_difference_ci,
    stratified_permutation_test,
    underpowered,
)

K = 32  # samples per arm in the default study
PAIRS_PER_CONSTRAINT = 3


def test_exact_permutation_of_four_against_four() -> None:
    rng = np.random.default_rng(0)
    result = permutation_test([5.0, 6.0, 7.0, 8.0], [1.0, 2.0, 3.0, 4.0], rng)
    assert result.method == "exact-permutation" and result.n_splits == math.comb(8, 4) == 70
    assert result.p_value == pytest.approx(2 / 70) == result.min_p  # 0.029, the smallest exact p
    assert result.statistic == 4.0
    same = permutation_test([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], rng)
    assert same.p_value == 1.0
    # agrees with scipy's exact permutation test
    a, b = [0.3, 1.2, 0.8, 2.0, 1.1], [0.1, 0.4, -0.2, 0.9]
    ours = permutation_test(a, b, rng).p_value
    ref = scipy.stats.permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y), n_resamples=10**6,
                                       alternative="two-sided").pvalue
    assert ours == pytest.approx(ref, abs=1e-9)


def test_monte_carlo_permutation_is_seeded_and_bounded() -> None:
    rng = np.random.default_rng
    a, b = rng(1).normal(0.5, 1, K), rng(2).normal(0, 1, K)
    first = permutation_test(a, b, rng(7), n_permutations=999)
    assert first.method == "monte-carlo-permutation" and first.n_splits == 999 and first.min_p == 1 / 1000
    assert first == permutation_test(a, b, rng(7), n_permutations=999)
    assert 1 / 1000 <= first.p_value <= 1.0
    far = permutation_test(a + 10, b, rng(7), n_permutations=999)
    assert far.p_value == 1 / 1000  # (0 + 1) / (999 + 1), never 0
    welch = scipy.stats.ttest_ind(a, b, equal_var=False).pvalue
    assert abs(first.p_value - welch) < 0.05  # large samples: close to the t-test


def test_stratified_permutation_permutes_within_pairs() -> None:
    rng = np.random.default_rng(0)
    # pair 1 has large values in both arms, pair 2 small ones: a pooled unstratified test would mix them
    strata = [([10.0, 11.0], [9.0, 10.0]), ([0.0, 1.0], [-1.0, 0.0])]
    result = stratified_permutation_test(strata, rng)
    assert result.method == "stratified-exact-permutation" and result.n_splits == 6 * 6
    assert result.statistic == 1.0
    # each stratum has two assignments with difference +1 and two with -1 (its two equal values swap):
    # |mean| >= 1 needs both strata at +1 or both at -1, 2 x 2 + 2 x 2 of the 36 assignments
    assert result.p_value == pytest.approx(8 / 36)
    big = [(rng.normal(0.4, 1, K), rng.normal(0, 1, K)) for _ in range(PAIRS_PER_CONSTRAINT)]
    mc = stratified_permutation_test(big, np.random.default_rng(3), n_permutations=999)
    assert mc.method == "stratified-monte-carlo-permutation"
    assert mc.statistic == pytest.approx(np.mean([np.mean(a) - np.mean(b) for a, b in big]))
    ci = stratified_difference_ci(big)
    assert ci.low < mc.statistic < ci.high and ci.estimate == pytest.approx(mc.statistic)


def test_fisher_exact_values() -> None:
    result = fisher_exact(3, 4, 0, 4)  # the pair 5: 3/4 against 0/4
    assert result.p_value == pytest.approx(0.142857, abs=1e-5) and result.statistic == 0.75
    assert result.method == "fisher-exact" and result.min_p == pytest.approx(fisher_min_p(4, 4, 3))
    assert fisher_min_p(4, 4, 3) > 0.05  # 4 vs 4 with 3 successes can never be significant
    assert fisher_exact(30, 32, 2, 32).p_value < 1e-10
    assert fisher_exact(0, 32, 0, 32).p_value == 1.0 and fisher_min_p(32, 32, 0) == 1.0
    with pytest.raises(ValueError, match="invalid counts"):
        fisher_exact(5, 4, 0, 4)


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([0.01, 0.9]) == [0.02, 0.9] and holm([]) == []
    assert holm([0.6, 0.6, 0.6]) == [1.0, 1.0, 1.0]


def test_effect_sizes_and_intervals() -> None:
    ci = difference_ci([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    ref = scipy.stats.ttest_ind([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], equal_var=False).confidence_interval(0.95)
    assert ci.estimate == 1.0 and (ci.low, ci.high) == pytest.approx((ref.low, ref.high))
    assert difference_ci([1.0, 1.0], [0.0, 0.0]).low == 1.0
    newcombe = proportion_difference_ci(56, 70, 48, 80)  # Newcombe (1998), table II example: 0.0524 .. 0.3339
    assert newcombe.estimate == pytest.approx(0.2) and (newcombe.low, newcombe.high) == pytest.approx(
        (0.0524, 0.3339), abs=1e-4)
    delta = cliffs_delta([5.0, 6.0, 7.0], [1.0, 2.0, 3.0])
    assert delta.estimate == 1.0 and delta.high == 1.0 and delta.low < 1.0
    assert cliffs_delta([1.0, 2.0], [1.0, 2.0]).estimate == 0.0
    rng = np.random.default_rng(4)
    a, b = rng.normal(1, 1, 200), rng.normal(0, 1, 200)
    auc = scipy.stats.mannwhitneyu(a, b).statistic / (200 * 200)
    d = cliffs_delta(a, b)
    assert d.estimate == pytest.approx(2 * auc - 1) and d.low < d.estimate < d.high
    pooled = stratified_cliffs_delta([(a[:100], b[:100]), (a[100:] + 5, b[100:] + 5)])
    halves = [cliffs_delta(a[:100], b[:100]), cliffs_delta(a[100:], b[100:])]
    assert pooled.estimate == pytest.approx(np.mean([h.estimate for h in halves]))
    assert pooled.high - pooled.low < min(h.high - h.low for h in halves)  # two strata: a narrower interval


def test_power_and_underpowered_flag() -> None:
    rng = np.random.default_rng(0)
    tiny = permutation_test([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], rng)
    assert underpowered(tiny, 4, 4, n_tests=1, alpha=0.05)  # min p 0.029 but power against d = 0.8 is low
    assert underpowered(tiny, 4, 4, n_tests=15, alpha=0.05)  # 15 x 0.029 > 0.05: can never be significant
    big = permutation_test(rng.normal(size=K), rng.normal(size=K), rng)
    assert power_two_sample(K, K, 0.05) > 0.8 and not underpowered(big, K, K, n_tests=1, alpha=0.05)
    pooled = stratified_permutation_test([(rng.normal(size=K), rng.normal(size=K))] * 3, rng)
    assert not underpowered(pooled, 3 * K, 3 * K, n_tests=40, alpha=0.05)
    assert underpowered(big, K, K, n_tests=40, alpha=0.05)  # 32 vs 32 at 0.05 / 40: power < 0.8


# ----------------------------------------------------------------------------- null simulations of the level

SIMULATIONS = 2000


def test_permutation_test_holds_its_level_on_null_data() -> None:
    """K = 32 per arm, skewed (exponential) null data: the false-positive rate at 5% stays at most 6%."""
    rng = np.random.default_rng(2024)
    rejections = sum(permutation_test(rng.exponential(1, K), rng.exponential(1, K), rng, n_permutations=199)
                     .p_value <= 0.05 for _ in range(SIMULATIONS))
    assert rejections / SIMULATIONS <= 0.06


def test_stratified_test_holds_its_level_on_null_data() -> None:
    """Three pairs per constraint with different baselines, K = 32 per arm, binary-ish heavy-tailed values."""
    rng = np.random.default_rng(7)
    rejections = 0
    for _ in range(SIMULATIONS // 2):
        strata = [(rng.standard_t(3, K) + shift, rng.standard_t(3, K) + shift) for shift in (0.0, 2.0, 5.0)]
        rejections += stratified_permutation_test(strata, rng, n_permutations=199).p_value <= 0.05
    assert rejections / (SIMULATIONS // 2) <= 0.06


def test_fisher_holds_its_level_on_null_binary_data() -> None:
    rng = np.random.default_rng(11)
    hits = rng.binomial(K, 0.3, size=(SIMULATIONS, 2))
    rejections = sum(fisher_exact(int(a), K, int(b), K).p_value <= 0.05 for a, b in hits)
    assert rejections / SIMULATIONS <= 0.06


def test_the_old_percentile_bootstrap_did_not_hold_its_level() -> None:
    """What the study used before: K = 4 per arm and a percentile bootstrap reject a true null far too often."""
    rng = np.random.default_rng(5)
    rejections = sum(bootstrap_difference(rng.normal(size=4), rng.normal(size=4), rng, 1000).significant
                     for _ in range(400))
    assert rejections / 400 > 0.10
