"""Small-sample statistics of the prompt study: permutation and Fisher tests, Holm's correction, effect sizes.

The study compares a few dozen samples per arm, so every test here is valid at any sample size:

- ``permutation_test``: two samples, difference of means; exact enumeration of all label splits while their
  number is at most ``max_exact``, else a seeded Monte-Carlo permutation test with p = (b + 1) / (m + 1)
  (b of m random splits at least as extreme), which never exceeds the nominal level under the null.
- ``stratified_permutation_test``: the pooled test per constraint. The unit of analysis is the prompt pair;
  labels are permuted *within* each pair (stratum) and the statistic is the mean over pairs of the per-pair
  difference, so a pair with an easy goal cannot carry the others.
- ``fisher_exact``: binary outcomes (successes out of n per arm), two-sided, with the smallest p the margins allow.
- ``holm``: Holm's step-down adjustment over every test of a report.
- ``difference_ci``: Welch's t interval of the difference of means (the effect size in the metric's units);
  ``proportion_difference_ci``: Newcombe's hybrid score interval for a difference of proportions;
  ``cliffs_delta``: Cliff's delta (= rank-biserial correlation) with a Hanley-McNeil interval
  (``stratified_cliffs_delta``: its mean over the pairs of a constraint).
- ``underpowered``: a test is flagged when even the most extreme data could not make it significant after the
  correction (smallest attainable p times the number of tests above alpha), or when its power against a
  large standardised effect (``POWER_EFFECT``) at the corrected level is below ``POWER_TARGET``.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.stats

from motion.eval.confidence import welch_test

MAX_EXACT = 20_000  # enumerate every label split up to this many, else Monte-Carlo
N_PERMUTATIONS = 9_999  # Monte-Carlo permutations (smallest p = 1 / 10 000)
POWER_EFFECT = 0.8  # Cohen's d of the "large effect" a test should detect
POWER_TARGET = 0.8
TOLERANCE = 1e-12  # statistics this close to the observed one count as "as extreme" (floating-point ties)


def _values(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """A 1-D float64 sample of finite values, at least one."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size < 1:
        raise ValueError(f"{name}: needs at least one value")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: values contain NaN or inf")
    return x


@dataclass(frozen=True)
class TestResult:
    """A two-sided test of arm a against arm b: the observed statistic, its p-value and how it was computed."""

    statistic: float  # mean(a) - mean(b) (or the mean over strata of it)
    p_value: float
    method: str  # exact-permutation | monte-carlo-permutation | fisher-exact (prefixed 'stratified-' when pooled)
    n_splits: int  # label splits enumerated or sampled
    min_p: float  # the smallest p-value this test can give at these sample sizes

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain dict for JSON."""
        return asdict(self)


def _split_count(sizes: Sequence[tuple[int, int]]) -> int:
    """Number of distinct label assignments of strata with (n_a, n_b) members each."""
    return math.prod(math.comb(na + nb, na) for na, nb in sizes)


def _p_from_null(null: np.ndarray, observed: float, exact: bool) -> float:
    """Two-sided p of |observed| among the null statistics (exact share, or (b + 1) / (m + 1))."""
    extreme = int(np.count_nonzero(np.abs(null) >= abs(observed) - TOLERANCE))
    return extreme / null.size if exact else (extreme + 1) / (null.size + 1)


def stratified_permutation_test(strata: Sequence[tuple[Sequence[float], Sequence[float]]], rng: np.random.Generator,
                                n_permutations: int = N_PERMUTATIONS, max_exact: int = MAX_EXACT) -> TestResult:
    """Test mean over strata of (mean(a_s) - mean(b_s)) = 0 by permuting the labels within each stratum.

    Exact (every assignment enumerated) while their number is at most ``max_exact``; otherwise
    ``n_permutations`` seeded random assignments and p = (b + 1) / (m + 1).
    """
    if not strata:
        raise ValueError("stratified_permutation_test: needs at least one stratum")
    pooled = [np.concatenate([_values(a, "arm a"), _values(b, "arm b")]) for a, b in strata]
    sizes = [(len(a), len(b)) for a, b in strata]
    observed = float(np.mean([x[:na].mean() - x[na:].mean() for x, (na, _) in zip(pooled, sizes)]))
    total = _split_count(sizes)
    exact = total <= max_exact
    per_stratum = []
    for x, (na, nb) in zip(pooled, sizes):
        n = na + nb
        if exact:
            masks = np.zeros((math.comb(n, na), n), dtype=bool)
            for row, chosen in enumerate(itertools.combinations(range(n), na)):
                masks[row, list(chosen)] = True
        else:
            order = np.argsort(rng.random((n_permutations, n)), axis=1)
            masks = order < na  # a random set of na positions per permutation
        sum_a = masks.astype(np.float64) @ x
        per_stratum.append(sum_a / na - (x.sum() - sum_a) / nb)
    if exact:  # every combination of the strata's assignments
        grids = np.meshgrid(*per_stratum, indexing="ij")
        null = np.mean([g.reshape(-1) for g in grids], axis=0)
    else:
        null = np.mean(per_stratum, axis=0)
    p = _p_from_null(null, observed, exact)
    min_p = _min_p(pooled, sizes, exact, n_permutations, total)
    prefix = "stratified-" if len(strata) > 1 else ""
    method = f"{prefix}{'exact' if exact else 'monte-carlo'}-permutation"
    return TestResult(observed, float(p), method, int(null.size), min_p)


def _min_p(pooled: list[np.ndarray], sizes: list[tuple[int, int]], exact: bool, n_permutations: int,
           total: int) -> float:
    """Smallest attainable p: the two most extreme assignments (one per direction) out of all, or 1 / (m + 1)."""
    if not exact:
        return 1.0 / (n_permutations + 1)
    distinct = all(np.unique(x).size == x.size for x in pooled)
    return min(1.0, (2.0 if distinct else 1.0) / total) if total > 1 else 1.0


def permutation_test(a: Sequence[float], b: Sequence[float], rng: np.random.Generator,
                     n_permutations: int = N_PERMUTATIONS, max_exact: int = MAX_EXACT) -> TestResult:
    """Two-sample permutation test of mean(a) - mean(b) = 0 (exact when few splits exist, else Monte-Carlo)."""
    return stratified_permutation_test([(a, b)], rng, n_permutations, max_exact)


def fisher_exact(successes_a: int, n_a: int, successes_b: int, n_b: int) -> TestResult:
    """Fisher's exact two-sided test of equal success rates; statistic = difference of the proportions."""
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b and n_a > 0 and n_b > 0):
        raise ValueError(f"fisher_exact: invalid counts {successes_a}/{n_a} vs {successes_b}/{n_b}")
    table = [[successes_a, n_a - successes_a], [successes_b, n_b - successes_b]]
    p = float(scipy.stats.fisher_exact(table, alternative="two-sided").pvalue)
    return TestResult(successes_a / n_a - successes_b / n_b, min(p, 1.0), "fisher-exact", 1,
                      fisher_min_p(n_a, n_b, successes_a + successes_b))


def fisher_min_p(n_a: int, n_b: int, successes: int) -> float:
    """The smallest two-sided Fisher p-value of any table with these margins (1 when every table is equally likely)."""
    low, high = max(0, successes - n_b), min(successes, n_a)
    return min(float(scipy.stats.fisher_exact([[k, n_a - k], [successes - k, n_b - successes + k]]).pvalue)
               for k in (low, high))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given), capped at 1 and kept monotone."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


@dataclass(frozen=True)
class Interval:
    """An estimate with its (1 - alpha) interval."""

    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        """Plain dict for JSON."""
        return asdict(self)


def difference_ci(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> Interval:
    """Welch's t interval of mean(a) - mean(b) (``motion.eval.confidence.welch_test``; unbounded below 2 values)."""
    x, y = _values(a, "arm a"), _values(b, "arm b")
    if min(x.size, y.size) < 2:
        return Interval(float(x.mean() - y.mean()), -math.inf, math.inf)
    welch = welch_test(x, y, alpha)
    return Interval(welch.difference, welch.ci_low, welch.ci_high)


def stratified_difference_ci(strata: Sequence[tuple[Sequence[float], Sequence[float]]],
                             alpha: float = 0.05) -> Interval:
    """Interval of the mean over strata of the per-stratum difference of means (normal, summed Welch variances)."""
    diffs, variances = [], []
    for a, b in strata:
        x, y = _values(a, "arm a"), _values(b, "arm b")
        diffs.append(x.mean() - y.mean())
        variances.append((x.var(ddof=1) / x.size if x.size > 1 else math.inf)
                         + (y.var(ddof=1) / y.size if y.size > 1 else math.inf))
    estimate = float(np.mean(diffs))
    se = math.sqrt(sum(variances)) / len(strata)
    half = float(scipy.stats.norm.ppf(1 - alpha / 2) * se)
    return Interval(estimate, estimate - half, estimate + half)


def wilson_interval(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def proportion_difference_ci(successes_a: int, n_a: int, successes_b: int, n_b: int,
                             alpha: float = 0.05) -> Interval:
    """Newcombe's hybrid score interval (method 10) of p_a - p_b."""
    z = float(scipy.stats.norm.ppf(1 - alpha / 2))
    pa, pb = successes_a / n_a, successes_b / n_b
    la, ua = wilson_interval(successes_a, n_a, z)
    lb, ub = wilson_interval(successes_b, n_b, z)
    diff = pa - pb
    low = diff - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = diff + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return Interval(diff, max(-1.0, low), min(1.0, high))


def _cliffs_delta_se(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Cliff's delta of two samples and its Hanley-McNeil standard error."""
    delta = float((x[:, None] > y[None, :]).mean() - (x[:, None] < y[None, :]).mean())
    # the variance at AUC 0 or 1 is 0: it is taken half a pair inside (0, 1), so a perfect split keeps a width
    pairs = x.size * y.size
    auc = min(max((delta + 1) / 2, 0.5 / pairs), 1 - 0.5 / pairs)
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (x.size - 1) * (q1 - auc * auc) + (y.size - 1) * (q2 - auc * auc)) / pairs
    return delta, 2 * math.sqrt(max(variance, 0.0))


def cliffs_delta(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> Interval:
    """Cliff's delta P(a > b) - P(a < b) (the rank-biserial correlation), with a Hanley-McNeil interval.

    The interval is AUC +- z SE(AUC) (Hanley and McNeil 1982), mapped to delta = 2 AUC - 1.
    """
    return stratified_cliffs_delta([(a, b)], alpha)


def stratified_cliffs_delta(strata: Sequence[tuple[Sequence[float], Sequence[float]]],
                            alpha: float = 0.05) -> Interval:
    """The mean over strata of Cliff's delta, with a normal interval from the strata's Hanley-McNeil errors."""
    estimates = [_cliffs_delta_se(_values(a, "arm a"), _values(b, "arm b")) for a, b in strata]
    delta = float(np.mean([d for d, _ in estimates]))
    half = float(scipy.stats.norm.ppf(1 - alpha / 2)) * math.sqrt(sum(se * se for _, se in estimates)) / len(strata)
    return Interval(delta, max(-1.0, delta - half), min(1.0, delta + half))


def power_two_sample(n_a: int, n_b: int, alpha: float, effect: float = POWER_EFFECT) -> float:
    """Power of a two-sided two-sample test at level ``alpha`` against a standardised effect (normal approximation)."""
    z = scipy.stats.norm.ppf(1 - alpha / 2)
    shift = effect * math.sqrt(n_a * n_b / (n_a + n_b))
    return float(scipy.stats.norm.sf(z - shift) + scipy.stats.norm.cdf(-z - shift))


def underpowered(result: TestResult, n_a: int, n_b: int, n_tests: int, alpha: float) -> bool:
    """True when the test cannot reach significance after Holm (min p x tests > alpha) or lacks power at alpha/tests."""
    if result.min_p * n_tests > alpha:
        return True
    return power_two_sample(n_a, n_b, alpha / n_tests) < POWER_TARGET
