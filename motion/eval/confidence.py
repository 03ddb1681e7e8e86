"""Confidence intervals and significance tests for metrics measured over replications or samples.

``mean_ci95`` is the text-to-motion protocol's interval (Guo et al.): mean and 1.96 * std / sqrt(n)
with the population std (ddof=0), as their ``get_metric_statistics``. ``welch_test`` compares two
rows (e.g. LGTM vs its ablation over replications); ``bootstrap_difference`` gives a
percentile-bootstrap interval for a difference of means. It is not valid for a few samples per arm (at 4 vs 4 it
rejects a true null about 14% of the time at nominal 5%): the prompt study tests with ``motion.study.statistics``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.stats

Z95 = 1.96


def _as_values(values: np.ndarray | list[float], name: str, min_count: int = 1) -> np.ndarray:
    """Check and convert a 1-D sample of finite values to float64."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size < min_count:
        raise ValueError(f"{name}: needs at least {min_count} values, got {x.size}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: values contain NaN or inf")
    return x


def mean_ci95(values: np.ndarray | list[float]) -> tuple[float, float]:
    """Mean and 95% CI half-width 1.96 * std / sqrt(n) (population std, the protocol's convention)."""
    x = _as_values(values, "mean_ci95")
    return float(x.mean()), float(Z95 * x.std() / np.sqrt(x.size))


@dataclass(frozen=True)
class Comparison:
    """Difference of means ``a - b`` with a (1 - alpha) interval, a p-value and the verdict at ``alpha``."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    method: str

    def to_dict(self) -> dict[str, float | bool | str]:
        """Plain dict for JSON."""
        return asdict(self)


def welch_test(a: np.ndarray | list[float], b: np.ndarray | list[float], alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variance t-test of mean(a) - mean(b), with its t-based (1 - alpha) interval.

    Degenerate case: when both samples have zero variance (deterministic metrics), the difference is
    exact: p = 1 when the means are equal and 0 otherwise.
    """
    x, y = _as_values(a, "welch_test: a", 2), _as_values(b, "welch_test: b", 2)
    diff = float(x.mean() - y.mean())
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = np.sqrt(vx + vy)
    if se == 0.0:
        p = 1.0 if diff == 0.0 else 0.0
        return Comparison(diff, diff, diff, p, p < alpha, "welch")
    dof = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    t = diff / se
    p = float(2.0 * scipy.stats.t.sf(abs(t), dof))
    half = float(scipy.stats.t.ppf(1.0 - alpha / 2.0, dof) * se)
    return Comparison(diff, diff - half, diff + half, p, p < alpha, "welch")


def bootstrap_difference(
    a: np.ndarray | list[float],
    b: np.ndarray | list[float],
    rng: np.random.Generator,
    n_resamples: int = 10000,
    alpha: float = 0.05,
) -> Comparison:
    """Percentile-bootstrap (1 - alpha) interval of mean(a) - mean(b); two-sided bootstrap p-value.

    Each resample draws both samples with replacement; the p-value is twice the smaller share of
    resampled differences on either side of 0 (floored at 1 / n_resamples). Significant when the
    interval excludes 0.
    """
    x, y = _as_values(a, "bootstrap_difference: a"), _as_values(b, "bootstrap_difference: b")
    x, y = np.sort(x), np.sort(y)  # input order does not change the result given the rng
    diffs = (
        x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
        - y[rng.integers(0, y.size, size=(n_resamples, y.size))].mean(axis=1)
    )
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    share = min((diffs <= 0).mean(), (diffs >= 0).mean())
    p = float(min(1.0, max(2.0 * share, 1.0 / n_resamples)))
    return Comparison(float(x.mean() - y.mean()), float(low), float(high), p, bool(low > 0 or high < 0), "bootstrap")
