"""Text-to-motion metrics on evaluator embeddings (Guo et al.'s protocol, as LGTM and TMR use it).

Every function takes embeddings as arrays of shape (N, D), works in float64 and is deterministic:
the ones that draw random pairs or shuffle take a ``numpy.random.Generator``, and they first put
the rows in a canonical order (sorted by value), so that given the seed the result does not
depend on the order of the input rows.

Metrics: FID, R-precision top-k in batches of 32, MM-Dist (matching score), Diversity,
MultiModality, and LGTM's part-level "similarity" (mean of (cos + 1) / 2).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg

from motion.eval.confidence import mean_ci95

R_PRECISION_BATCH = 32
DIVERSITY_TIMES = 300
MULTIMODALITY_TIMES = 10
TOP_K = 3


def _as_embeddings(x: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    """Check and convert an (N, D) embedding array to float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected embeddings of shape (N, D), got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name}: needs at least {min_rows} samples, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: embeddings contain NaN or inf; check the encoder inputs")
    return x


def canonical_order(*arrays: np.ndarray) -> np.ndarray:
    """Row permutation putting the rows of the side-by-side arrays in one fixed order, whatever the input order.

    Rows are compared by their float64 bytes (a total order on contents, fast for wide rows); equal
    rows keep their relative order, which cannot change a result since they are interchangeable.
    """
    stacked = np.ascontiguousarray(
        np.concatenate([np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in arrays], axis=1)
    )
    stacked += 0.0  # one representation of zero: -0.0 becomes 0.0
    rows = stacked.view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1]))).ravel()
    return np.argsort(rows, kind="stable")


def euclidean_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances (N, M) between rows of a (N, D) and b (M, D)."""
    return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)


# ----------------------------------------------------------------------------- FID


def fit_gaussian(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of embeddings (N >= 2, D)."""
    x = _as_embeddings(embeddings, "fit_gaussian", min_rows=2)
    x = x[canonical_order(x)]
    mu = x.mean(axis=0)
    centred = x - mu
    sigma = centred.T @ centred / (x.shape[0] - 1)
    return mu, sigma


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """Tr(sqrtm(sigma1 @ sigma2)); retries with ``eps`` added to the diagonals when ill-conditioned."""
    product = sigma1 @ sigma2
    scale = max(np.linalg.norm(product), 1e-300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = scipy.linalg.sqrtm(product)
    residual = np.linalg.norm(root @ root - product) / scale if np.isfinite(root).all() else np.inf
    if residual > 1e-6:
        offset = eps * np.eye(sigma1.shape[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if not np.isfinite(root).all():
        # Last resort: eigenvalues of the product are those of the PSD sqrt(S1) S2 sqrt(S1).
        w1, v1 = np.linalg.eigh(sigma1)
        r1 = (v1 * np.sqrt(np.clip(w1, 0.0, None))) @ v1.T
        m = r1 @ sigma2 @ r1
        return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum())
    return float(np.real(np.trace(root)))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance |mu1-mu2|^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)) between two Gaussians (never NaN)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"frechet_distance: shapes do not match: mu1 {mu1.shape}, sigma1 {sigma1.shape}, "
            f"mu2 {mu2.shape}, sigma2 {sigma2.shape}"
        )
    for name, arr in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(arr).all():
            raise ValueError(f"frechet_distance: {name} contains NaN or inf")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * _trace_sqrt_product(sigma1, sigma2, eps)
    # A squared distance: tiny negative values are rounding error (identical sets).
    return float(max(value, 0.0))


def fid(real: np.ndarray, generated: np.ndarray) -> float:
    """FID between real and generated motion embeddings (each (N >= 2, D))."""
    real = _as_embeddings(real, "fid: real", min_rows=2)
    generated = _as_embeddings(generated, "fid: generated", min_rows=2)
    if real.shape[1] != generated.shape[1]:
        raise ValueError(f"fid: embedding sizes differ: real {real.shape[1]}, generated {generated.shape[1]}")
    return frechet_distance(*fit_gaussian(real), *fit_gaussian(generated))


# ------------------------------------------------------------- R-precision, MM-Dist


def _matched_pairs(text: np.ndarray, motion: np.ndarray, fn: str) -> tuple[np.ndarray, np.ndarray]:
    text = _as_embeddings(text, f"{fn}: text")
    motion = _as_embeddings(motion, f"{fn}: motion")
    if text.shape != motion.shape:
        raise ValueError(f"{fn}: text {text.shape} and motion {motion.shape} must be matched pairs of one shape")
    return text, motion


def r_precision(
    text: np.ndarray,
    motion: np.ndarray,
    rng: np.random.Generator,
    batch_size: int = R_PRECISION_BATCH,
    top_k: int = TOP_K,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Top-1..top_k retrieval accuracy (top_k,) of matched (text, motion) pairs in shuffled batches.

    Pairs are shuffled and cut into batches of ``batch_size`` (the incomplete last batch is dropped,
    as Guo's evaluation loader does); within a batch, each text ranks the batch's motions by
    Euclidean distance and scores a hit at k when its own motion is among the k nearest. With
    ``labels`` (one per pair, e.g. the text), a retrieved motion also counts when its label equals the
    query's: part texts repeat (every idle part reads "does nothing") and must not count as misses.
    """
    text, motion = _matched_pairs(text, motion, "r_precision")
    n = text.shape[0]
    if n < batch_size:
        raise ValueError(f"r_precision: needs at least one full batch of {batch_size} pairs, got {n}")
    if not 1 <= top_k <= batch_size:
        raise ValueError(f"r_precision: top_k must be in 1..{batch_size}, got {top_k}")
    keys = np.arange(n) if labels is None else _label_codes(labels, n)
    order = canonical_order(text, motion, keys[:, None])
    text, motion, keys = text[order], motion[order], keys[order]
    perm = rng.permutation(n)[: (n // batch_size) * batch_size].reshape(-1, batch_size)
    hits = np.zeros(top_k)
    for idx in perm:
        dist = euclidean_distances(text[idx], motion[idx])
        ranked = np.argsort(dist, axis=1, kind="stable")[:, :top_k]
        correct = keys[idx][ranked] == keys[idx][:, None]  # (B, top_k)
        hits += np.logical_or.accumulate(correct, axis=1).sum(axis=0)
    return hits / perm.size


def _label_codes(labels: np.ndarray | list, n: int) -> np.ndarray:
    """Integer codes (n,) of arbitrary hashable labels, equal codes for equal labels."""
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"r_precision: got {len(labels)} labels for {n} pairs")
    codes = {lab: i for i, lab in enumerate(sorted(set(labels), key=str))}
    return np.array([codes[lab] for lab in labels], dtype=np.int64)


def matching_score(text: np.ndarray, motion: np.ndarray) -> float:
    """MM-Dist: mean Euclidean distance between matched text and motion embeddings."""
    text, motion = _matched_pairs(text, motion, "matching_score")
    return float(np.linalg.norm(text - motion, axis=1).mean())


# ------------------------------------------------------------ Diversity, MultiModality


def diversity(embeddings: np.ndarray, rng: np.random.Generator, times: int = DIVERSITY_TIMES) -> float:
    """Mean distance between ``times`` random pairs: two index sets drawn without replacement."""
    x = _as_embeddings(embeddings, "diversity")
    if x.shape[0] < times:
        raise ValueError(
            f"diversity: needs at least {times} motions for {times} pairs, got {x.shape[0]}; "
            "lower diversity_times or evaluate more motions"
        )
    x = x[canonical_order(x)]
    first = rng.choice(x.shape[0], times, replace=False)
    second = rng.choice(x.shape[0], times, replace=False)
    return float(np.linalg.norm(x[first] - x[second], axis=1).mean())


def multimodality(embeddings: np.ndarray, rng: np.random.Generator, times: int = MULTIMODALITY_TIMES) -> float:
    """Mean distance between ``times`` random pairs of motions generated for the same text.

    ``embeddings`` is (num_texts, num_repeats, D): several generations per text. For each text, two
    index sets of ``times`` generations are drawn without replacement and paired, as in Guo's code;
    unlike it, every text gets its own draw (same expectation, less variance across texts).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"multimodality: expected (num_texts, num_repeats, D), got shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < times:
        raise ValueError(
            f"multimodality: needs >= {times} generations per text for {times} pairs, got {x.shape[1]}"
        )
    if not np.isfinite(x).all():
        raise ValueError("multimodality: embeddings contain NaN or inf")
    # Canonical order of texts, and of the generations within each text.
    x = np.stack([g[canonical_order(g)] for g in x])
    x = x[canonical_order(x.reshape(x.shape[0], -1))]
    slots = np.tile(np.arange(x.shape[1]), (x.shape[0], 1))
    first = rng.permuted(slots, axis=1)[:, :times]
    second = rng.permuted(slots, axis=1)[:, :times]
    rows = np.arange(x.shape[0])[:, None]
    return float(np.linalg.norm(x[rows, first] - x[rows, second], axis=2).mean())


# ------------------------------------------------------------------- Part level


def cosine_similarity_score(motion: np.ndarray, text: np.ndarray) -> float:
    """LGTM's part-level "similarity": mean of (cos(motion_i, text_i) + 1) / 2 over matched pairs."""
    text, motion = _matched_pairs(text, motion, "cosine_similarity_score")
    norms = np.linalg.norm(motion, axis=1) * np.linalg.norm(text, axis=1)
    cos = (motion * text).sum(axis=1) / np.maximum(norms, 1e-12)
    return float(((np.clip(cos, -1.0, 1.0) + 1.0) / 2.0).mean())


def part_r_precision(
    text: np.ndarray,
    motion: np.ndarray,
    texts: list[str],
    rng: np.random.Generator,
    batch_size: int = R_PRECISION_BATCH,
    top_k: int = TOP_K,
) -> np.ndarray:
    """R-precision of one part's (text, motion) latents, counting motions whose part text is identical as hits."""
    return r_precision(text, motion, rng, batch_size=batch_size, top_k=top_k, labels=np.asarray(texts, dtype=object))


# --------------------------------------------------------------------- Replications


def run_replications(
    fn: Callable[[np.random.Generator], dict[str, float]], n: int, seed: int
) -> dict[str, np.ndarray]:
    """Call ``fn(rng)`` for ``n`` independent child seeds of ``seed``; values (n,) per metric name."""
    if n < 1:
        raise ValueError(f"run_replications: n must be >= 1, got {n}")
    children = np.random.SeedSequence(seed).spawn(n)
    rows = [fn(np.random.default_rng(child)) for child in children]
    names = sorted(rows[0])
    for row in rows[1:]:
        if sorted(row) != names:
            raise ValueError(f"run_replications: replications returned different metrics: {names} vs {sorted(row)}")
    return {name: np.array([row[name] for row in rows], dtype=np.float64) for name in names}


def evaluate_replications(
    fn: Callable[[np.random.Generator], dict[str, float]], n: int, seed: int
) -> dict[str, tuple[float, float]]:
    """Mean and 95% CI half-width (1.96 std / sqrt(n)) of each metric over ``n`` replications."""
    return {name: mean_ci95(values) for name, values in run_replications(fn, n, seed).items()}
