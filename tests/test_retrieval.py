"""Retrieval metrics of TMR on similarity matrices with known ranks."""
from __future__ import annotations

import numpy as np
import pytest

from motion.eval import retrieval


def test_identity_similarity_is_perfect():
    m = retrieval.retrieval_metrics(np.eye(5), np.eye(5))
    for direction in ("t2m", "m2t"):
        assert m[direction] == {"R1": 100.0, "R2": 100.0, "R3": 100.0, "R5": 100.0, "R10": 100.0, "MedR": 1.0}


def test_reversed_similarity_gives_known_ranks():
    n = 6
    i, j = np.indices((n, n))
    sims = ((j - i) % n).astype(float)  # the correct column scores 0: the lowest of every row
    ranks = retrieval.ground_truth_ranks(sims)
    assert ranks.tolist() == [n - 1] * n
    m = retrieval.recall_metrics(ranks)
    assert m["R1"] == 0.0 and m["R5"] == 0.0 and m["R10"] == 100.0 and m["MedR"] == n


def test_hand_made_ranks_and_recalls():
    sims = np.array([[0.9, 0.1, 0.0, 0.2],   # rank 0
                     [0.8, 0.5, 0.9, 0.1],   # rank 2
                     [0.1, 0.3, 0.2, 0.0],   # rank 1
                     [0.5, 0.6, 0.7, 0.4]])  # rank 3
    ranks = retrieval.ground_truth_ranks(sims)
    assert ranks.tolist() == [0, 2, 1, 3]
    m = retrieval.recall_metrics(ranks)
    assert m == {"R1": 25.0, "R2": 50.0, "R3": 75.0, "R5": 100.0, "R10": 100.0, "MedR": 2.5}
    assert retrieval.ground_truth_ranks(sims.T).tolist() == [0, 1, 2, 0]  # motion->text: columns as queries


def test_ties_count_as_their_average_position():
    sims = np.array([[0.5, 0.5, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert retrieval.ground_truth_ranks(sims).tolist() == [1.0, 0.0, 0.0]


def test_threshold_protocol_accepts_a_similar_caption():
    sims = np.array([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.0, 0.1, 0.9]])
    sentences = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # captions 0 and 1 are identical
    assert retrieval.ground_truth_ranks(sims).tolist() == [1, 0, 0]
    selfsim = sentences @ sentences.T
    assert retrieval.ground_truth_ranks(sims, selfsim, threshold=0.95).tolist() == [0, 0, 0]
    # 0.95 on TMR's (cos + 1) / 2 scale is cosine 0.9: a cosine of 0.85 is not similar enough
    assert retrieval.ground_truth_ranks(sims, 0.85 * (1 - np.eye(3)) + np.eye(3), 0.95).tolist() == [1, 0, 0]


def test_batches_of_32_average_and_chance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8))
    perfect = retrieval.batched_retrieval_metrics(x, x, batch_size=32)
    assert perfect["t2m"]["R1"] == 100.0 and perfect["m2t"]["MedR"] == 1.0
    noise = retrieval.batched_retrieval_metrics(x, rng.normal(size=(96, 8)), batch_size=32, repeats=30)
    chance = retrieval.chance_metrics(32)
    assert chance["R1"] == pytest.approx(100 / 32) and chance["MedR"] == 16.5
    assert abs(noise["t2m"]["R3"] - chance["R3"]) < 4.0
    with pytest.raises(ValueError):
        retrieval.batched_retrieval_metrics(x[:10], x[:10], batch_size=32)


def test_all_protocols_keys():
    x = np.random.default_rng(1).normal(size=(40, 4))
    out = retrieval.all_protocols(x, x, x / np.linalg.norm(x, axis=1, keepdims=True))
    assert set(out) == {"all", "threshold", "batches_32"}
    assert out["all"]["t2m"]["R1"] == 100.0
