"""Text-motion retrieval metrics of TMR: recall at 1, 2, 3, 5, 10 and median rank, both directions.

Pairs share an index (text i describes motion i). Similarities are cosines of the latents; ranks
are 0-based and ties are broken by averaging (TMR). Protocols:
- ``all``: the whole test set at once;
- ``threshold``: the same, but a retrieved item counts as correct when its caption's sentence
  similarity to the query's caption is >= the threshold (0.95 on TMR's (cos + 1) / 2 scale);
- ``batches_32``: the test set shuffled into batches of 32 pairs (Guo et al.), metrics averaged.
"""
from __future__ import annotations

import numpy as np

RECALL_AT: tuple[int, ...] = (1, 2, 3, 5, 10)
DIRECTIONS: tuple[str, ...] = ("t2m", "m2t")


def cosine_similarities(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, D) x (M, D) -> (N, M) cosine similarities."""
    x = x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-12)
    y = y / np.linalg.norm(y, axis=-1, keepdims=True).clip(1e-12)
    return x @ y.T


def ground_truth_ranks(sims: np.ndarray, text_selfsim: np.ndarray | None = None,
                       threshold: float | None = None) -> np.ndarray:
    """0-based rank of each row's correct column (the diagonal); ties count as their average position.

    With ``text_selfsim`` and ``threshold``, every column whose caption has self-similarity
    >= 2 * threshold - 1 with the row's caption is correct, and the best-scored one counts.
    """
    sims = np.asarray(sims, dtype=np.float64)
    if sims.ndim != 2 or sims.shape[0] != sims.shape[1]:
        raise ValueError(f"similarities must be a square matrix, got shape {sims.shape}")
    if text_selfsim is not None and threshold is not None:
        correct = np.asarray(text_selfsim) >= 2.0 * threshold - 1.0
        np.fill_diagonal(correct, True)
        gt = np.where(correct, sims, -np.inf).max(axis=1)
    else:
        gt = np.diag(sims)
    greater = (sims > gt[:, None]).sum(axis=1)
    equal = (sims == gt[:, None]).sum(axis=1)
    return greater + (equal - 1) / 2.0


def recall_metrics(ranks: np.ndarray) -> dict[str, float]:
    """R@k in percent for k in 1, 2, 3, 5, 10 and the median rank (1-based) of 0-based ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out = {f"R{k}": float(100.0 * np.mean(ranks < k)) for k in RECALL_AT}
    out["MedR"] = float(np.median(ranks) + 1.0)
    return out


def retrieval_metrics(text_latents: np.ndarray, motion_latents: np.ndarray, sentences: np.ndarray | None = None,
                      threshold: float | None = None) -> dict[str, dict[str, float]]:
    """Metrics text->motion (``t2m``) and motion->text (``m2t``) over all the given pairs."""
    sims = cosine_similarities(text_latents, motion_latents)
    selfsim = None if sentences is None or threshold is None else sentences @ sentences.T
    return {
        "t2m": recall_metrics(ground_truth_ranks(sims, selfsim, threshold)),
        "m2t": recall_metrics(ground_truth_ranks(sims.T, selfsim, threshold)),
    }


def batched_retrieval_metrics(text_latents: np.ndarray, motion_latents: np.ndarray, batch_size: int = 32,
                              seed: int = 0, repeats: int = 1) -> dict[str, dict[str, float]]:
    """Metrics averaged over shuffled batches of ``batch_size`` pairs (leftover pairs dropped).

    ``repeats`` > 1 averages over that many different shuffles, which lowers the variance on
    small test sets.
    """
    n = len(text_latents)
    if n < batch_size:
        raise ValueError(f"{n} pairs are fewer than one batch of {batch_size}")
    rng = np.random.default_rng(seed)
    per_batch: dict[str, list[dict[str, float]]] = {d: [] for d in DIRECTIONS}
    for _ in range(repeats):
        order = rng.permutation(n)
        for b in range(n // batch_size):
            idx = order[b * batch_size: (b + 1) * batch_size]
            metrics = retrieval_metrics(text_latents[idx], motion_latents[idx])
            for d in DIRECTIONS:
                per_batch[d].append(metrics[d])
    return {d: {k: float(np.mean([m[k] for m in per_batch[d]])) for k in per_batch[d][0]} for d in DIRECTIONS}


def chance_metrics(batch_size: int) -> dict[str, float]:
    """Expected R@k (percent) and median rank of a random ranking among ``batch_size`` candidates."""
    out = {f"R{k}": 100.0 * min(k, batch_size) / batch_size for k in RECALL_AT}
    out["MedR"] = (batch_size + 1) / 2.0
    return out


def all_protocols(text_latents: np.ndarray, motion_latents: np.ndarray, sentences: np.ndarray,
                  threshold: float = 0.95, batch_size: int = 32, seed: int = 0,
                  repeats: int = 1) -> dict[str, dict[str, dict[str, float]]]:
    """The ``all``, ``threshold`` and ``batches_<batch_size>`` protocols on one test set."""
    out = {
        "all": retrieval_metrics(text_latents, motion_latents),
        "threshold": retrieval_metrics(text_latents, motion_latents, sentences, threshold),
    }
    if len(text_latents) >= batch_size:
        out[f"batches_{batch_size}"] = batched_retrieval_metrics(text_latents, motion_latents, batch_size,
                                                                 seed, repeats)
    return out
