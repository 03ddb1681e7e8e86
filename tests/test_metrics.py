"""Known answers for the text-to-motion metrics and the replication statistics."""
from __future__ import annotations

import numpy as np
import pytest

from motion.eval.confidence import bootstrap_difference, mean_ci95, welch_test
from motion.eval.metrics import (
    cosine_similarity_score,
    diversity,
    evaluate_replications,
    fid,
    fit_gaussian,
    frechet_distance,
    matching_score,
    multimodality,
    part_r_precision,
    r_precision,
    run_replications,
)


def samples_with_moments(mu: np.ndarray, sigma: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n samples whose sample mean and unbiased covariance are exactly mu and sigma."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, len(mu)))
    z -= z.mean(axis=0)
    whiten = np.linalg.cholesky(np.cov(z, rowvar=False))
    z = np.linalg.solve(whiten, z.T).T  # sample covariance exactly identity
    return z @ np.linalg.cholesky(sigma).T + mu


def random_spd(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ------------------------------------------------------------------------------- FID


def test_fid_of_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(200, 16))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fid(x, x[::-1].copy()) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_closed_form_diagonal():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)  # 5 + 1 + 1 + 4
    assert expected == pytest.approx(11.0)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_closed_form_commuting_covariances():
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T: Tr sqrt(S1 S2) = sum sqrt(a b).
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))
    a, b = np.array([1.0, 2.0, 3.0, 0.5, 0.1]), np.array([2.0, 0.5, 3.0, 4.0, 0.1])
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    mu1, mu2 = np.ones(5), np.zeros(5)
    expected = 5.0 + a.sum() + b.sum() - 2.0 * np.sqrt(a * b).sum()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_from_samples_matches_closed_form():
    d = 8
    mu1, mu2 = np.zeros(d), np.linspace(-1, 1, d)
    s1, s2 = random_spd(d, 2), random_spd(d, 3)
    x1, x2 = samples_with_moments(mu1, s1, 50, 4), samples_with_moments(mu2, s2, 70, 5)
    m, s = fit_gaussian(x1)
    np.testing.assert_allclose(m, mu1, atol=1e-10)
    np.testing.assert_allclose(s, s1, atol=1e-10)
    assert fid(x1, x2) == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-8)
    # Independent check of the trace term through the eigenvalues of S1 S2.
    eig = np.linalg.eigvals(s1 @ s2)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eig.astype(complex)).real.sum()
    assert fid(x1, x2) == pytest.approx(expected, rel=1e-8)


def test_fid_no_nan_with_singular_covariance():
    rng = np.random.default_rng(6)
    # Fewer samples than dimensions: both covariances are rank-deficient.
    x, y = rng.normal(size=(10, 64)), rng.normal(size=(12, 64)) + 0.5
    value = fid(x, y)
    assert np.isfinite(value) and value > 0
    # A constant dimension and duplicated rows: exactly singular.
    z = rng.normal(size=(40, 6))
    z[:, 2] = 3.0
    w = np.concatenate([z[:20], z[:20]])
    assert np.isfinite(fid(z, w))
    # Zero covariance on both sides: distance of the means only.
    c1, c2 = np.zeros((5, 3)), np.ones((5, 3))
    assert fid(c1, c2) == pytest.approx(3.0, abs=1e-6)


def test_fid_errors_with_too_few_samples_or_bad_input():
    x = np.zeros((1, 4))
    with pytest.raises(ValueError, match="at least 2"):
        fid(x, np.random.default_rng(0).normal(size=(10, 4)))
    with pytest.raises(ValueError, match="sizes differ"):
        fid(np.ones((3, 4)), np.ones((3, 5)))
    bad = np.ones((3, 4))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fid(bad, np.ones((3, 4)))


def test_fid_is_independent_of_row_order():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(100, 10)), rng.normal(size=(80, 10)) * 2
    assert fid(x, y) == fid(x[rng.permutation(100)], y[rng.permutation(80)])


# ------------------------------------------------------------- R-precision, MM-Dist


def test_r_precision_is_one_on_matched_pairs():
    rng = np.random.default_rng(8)
    motion = rng.normal(size=(96, 16)) * 10
    text = motion + rng.normal(size=motion.shape) * 1e-3
    np.testing.assert_allclose(r_precision(text, motion, np.random.default_rng(0)), [1.0, 1.0, 1.0])
    assert matching_score(text, motion) < 1e-2


def test_r_precision_is_chance_on_random_pairs():
    rng = np.random.default_rng(9)
    text, motion = rng.normal(size=(32 * 200, 8)), rng.normal(size=(32 * 200, 8))
    top = r_precision(text, motion, np.random.default_rng(1))
    np.testing.assert_allclose(top, [1 / 32, 2 / 32, 3 / 32], atol=0.01)
    assert np.all(np.diff(top) > 0)


def test_r_precision_known_ranks():
    # One batch of 32 in 1-D: motion i at i, text i at i + offset; offsets give a known rank.
    motion = np.arange(32, dtype=np.float64)[:, None] * 10
    text = motion.copy()
    text[0] = 6.0  # motion 1 at 4, motion 0 at 6, motion 2 at 14: rank 2
    text[5] = motion[7] + 0.2  # nearest: 7, 8 (9.8), then 6 (10.2), 5 is 4th: miss at top-3
    top = r_precision(text, motion, np.random.default_rng(2), top_k=3)
    np.testing.assert_allclose(top, [30 / 32, 31 / 32, 31 / 32])


def test_r_precision_independent_of_input_order_given_seed():
    rng = np.random.default_rng(10)
    motion = rng.normal(size=(100, 6))
    text = motion + rng.normal(size=motion.shape)
    perm = rng.permutation(100)
    a = r_precision(text, motion, np.random.default_rng(3))
    b = r_precision(text[perm], motion[perm], np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert matching_score(text, motion) == pytest.approx(matching_score(text[perm], motion[perm]), rel=1e-12)


def test_r_precision_errors():
    x = np.zeros((31, 4))
    with pytest.raises(ValueError, match="full batch of 32"):
        r_precision(x, x, np.random.default_rng(0))
    with pytest.raises(ValueError, match="matched pairs"):
        r_precision(np.zeros((40, 4)), np.zeros((41, 4)), np.random.default_rng(0))


def test_part_r_precision_counts_identical_texts_as_hits():
    # Every pair shares the text "does nothing": every retrieval is right.
    rng = np.random.default_rng(11)
    text, motion = rng.normal(size=(64, 4)), rng.normal(size=(64, 4))
    top = part_r_precision(text, motion, ["does nothing"] * 64, np.random.default_rng(0))
    np.testing.assert_allclose(top, [1.0, 1.0, 1.0])
    # Distinct texts: the same as plain R-precision.
    names = [f"text {i}" for i in range(64)]
    by_text = part_r_precision(text, motion, names, np.random.default_rng(0))
    np.testing.assert_array_equal(by_text, r_precision(text, motion, np.random.default_rng(0)))


# ------------------------------------------------------------ Diversity, MultiModality


def test_diversity_known_answer_and_errors():
    # Points on two far clusters at distance 10; pairs within a cluster are at 0.
    x = np.zeros((600, 3))
    x[300:, 0] = 10.0
    values = [diversity(x, np.random.default_rng(s)) for s in range(20)]
    assert np.mean(values) == pytest.approx(5.0, abs=0.5)  # half of the pairs cross
    # Standard normal in d dims: E|a-b| ~ sqrt(2 d).
    g = np.random.default_rng(12).normal(size=(2000, 64))
    assert diversity(g, np.random.default_rng(0)) == pytest.approx(np.sqrt(2 * 64), rel=0.05)
    with pytest.raises(ValueError, match="at least 300"):
        diversity(np.zeros((299, 3)), np.random.default_rng(0))


def test_diversity_independent_of_input_order_given_seed():
    g = np.random.default_rng(13).normal(size=(500, 8))
    perm = np.random.default_rng(14).permutation(500)
    assert diversity(g, np.random.default_rng(5)) == diversity(g[perm], np.random.default_rng(5))


def test_multimodality_known_answer_and_errors():
    # Each text's generations lie on a line with spacing 1: pair distances average E|i - j| over
    # independent uniform i, j in 0..29, i.e. (30^2 - 1) / (3 * 30) = 9.99.
    reps = np.zeros((400, 30, 2))
    reps[:, :, 0] = np.arange(30)
    value = multimodality(reps, np.random.default_rng(0))
    assert value == pytest.approx((30**2 - 1) / 90, rel=0.03)
    # Deterministic given the seed and independent of the order of texts and of generations.
    shuffled = reps[::-1][:, np.random.default_rng(1).permutation(30)]
    assert multimodality(shuffled, np.random.default_rng(0)) == value
    # Identical generations: zero.
    assert multimodality(np.ones((3, 20, 4)), np.random.default_rng(0)) == 0.0
    with pytest.raises(ValueError, match="generations per text"):
        multimodality(np.zeros((3, 9, 4)), np.random.default_rng(0))
    g = np.random.default_rng(2).normal(size=(200, 30, 32))
    # E|a - b| = sqrt(2) E[chi_32] = 7.969 for distinct draws; a pair repeats one generation w.p. 1/30.
    assert multimodality(g, np.random.default_rng(3)) == pytest.approx(7.969 * 29 / 30, rel=0.02)


# ------------------------------------------------------------------- part level


def test_cosine_similarity_score():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    assert cosine_similarity_score(a, 5 * a) == pytest.approx(1.0)
    assert cosine_similarity_score(a, -a) == pytest.approx(0.0)
    assert cosine_similarity_score(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(0.5)


# --------------------------------------------------------------- replications, CI


def test_evaluate_replications_mean_ci_and_determinism():
    def fn(rng: np.random.Generator) -> dict[str, float]:
        return {"a": float(rng.normal()), "const": 2.0}

    out = evaluate_replications(fn, 20, seed=1234)
    assert out == evaluate_replications(fn, 20, seed=1234)
    values = run_replications(fn, 20, seed=1234)["a"]
    assert out["a"] == pytest.approx((values.mean(), 1.96 * values.std() / np.sqrt(20)))
    assert out["const"] == (2.0, 0.0)
    assert len(set(values.tolist())) == 20  # independent child seeds
    assert evaluate_replications(fn, 20, seed=1)["a"] != out["a"]


def test_mean_ci95_known():
    assert mean_ci95([1.0, 3.0]) == pytest.approx((2.0, 1.96 * 1.0 / np.sqrt(2)))
    with pytest.raises(ValueError):
        mean_ci95([])


def test_welch_test_matches_scipy_and_detects_differences():
    import scipy.stats

    rng = np.random.default_rng(15)
    a, b = rng.normal(0.0, 1.0, 20), rng.normal(0.2, 2.0, 25)
    res = welch_test(a, b)
    ref = scipy.stats.ttest_ind(a, b, equal_var=False)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.ci_low < res.difference < res.ci_high
    far = welch_test(rng.normal(0, 0.1, 20), rng.normal(1, 0.1, 20))
    assert far.significant and far.ci_high < 0
    same = welch_test([1.0, 1.0, 1.0], [1.0, 1.0])
    assert same.p_value == 1.0 and not same.significant
    diff = welch_test([1.0, 1.0], [2.0, 2.0])
    assert diff.p_value == 0.0 and diff.significant and diff.difference == -1.0


def test_bootstrap_difference():
    rng = np.random.default_rng(16)
    a, b = rng.normal(1.0, 0.5, 30), rng.normal(0.0, 0.5, 30)
    res = bootstrap_difference(a, b, np.random.default_rng(0), n_resamples=2000)
    assert res.significant and res.ci_low > 0 and res.p_value < 0.01
    assert res == bootstrap_difference(a[::-1], b[::-1], np.random.default_rng(0), n_resamples=2000)
    null = bootstrap_difference(a, a, np.random.default_rng(0), n_resamples=2000)
    assert not null.significant and null.ci_low < 0 < null.ci_high


def test_fid_falls_back_when_sqrtm_fails(monkeypatch):
    """A NaN square root triggers the diagonal-offset retry, then the eigenvalue fallback: never NaN."""
    import motion.eval.metrics as m

    mu1, mu2 = np.zeros(4), np.ones(4)
    s1, s2 = random_spd(4, 20), random_spd(4, 21)
    expected = frechet_distance(mu1, s1, mu2, s2)
    calls = []
    real_sqrtm = m.scipy.linalg.sqrtm

    def nan_once(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(m.scipy.linalg, "sqrtm", nan_once)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-5)  # retried with eps
    assert len(calls) == 2
    monkeypatch.setattr(m.scipy.linalg, "sqrtm", lambda a: np.full_like(a, np.nan))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)  # eigenvalue fallback
