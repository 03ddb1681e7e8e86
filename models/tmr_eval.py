"""Evaluating trained TMR encoders: retrieval protocols on the test split and a part-specificity study.

The study asks whether a part encoder retrieves by its own part: among pairs of test motions that
differ in part q's action, it measures how often encoder p's text of motion a scores motion a above
motion b (2-way accuracy, 50% = cannot tell them apart) and how similar the two motion latents are.
For q other than p only pairs whose p actions agree are used. A right-arm encoder should separate
pairs differing in the right arm (accuracy near 100%) and not pairs differing in the left leg with
the same right-arm action (near 50%).
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import torch

from models.tmr import TMR
from models.tmr_train import encode_pairs
from motion.core.parts import PART_NAMES
from motion.datasets import TextMotionDataset, first_caption_indices
from motion.eval.retrieval import cosine_similarities


def test_pairs(model: TMR, dataset: TextMotionDataset, device: torch.device | str = "cpu",
               ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Seg_ids, text latents, motion latents and sentence embeddings of the first caption of every motion."""
    indices = first_caption_indices(dataset.segments)
    text, motion, sentences = encode_pairs(model, dataset, indices, torch.device(device))
    return [dataset.segments[i].seg_id for i in indices], text, motion, sentences


def single_part_differences(actions: dict[str, dict[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Pairs of ids (sorted) whose part actions differ in exactly one part, grouped by that part."""
    groups: dict[str, list[tuple[str, str]]] = {p: [] for p in PART_NAMES}
    ids = sorted(actions)
    for a, b in combinations(ids, 2):
        differing = [p for p in PART_NAMES if actions[a][p] != actions[b][p]]
        if len(differing) == 1:
            groups[differing[0]].append((a, b))
    return groups


def pairs_differing_in(actions: dict[str, dict[str, str]], part: str,
                       same: str | None = None) -> list[tuple[str, str]]:
    """Pairs of ids (sorted) whose ``part`` actions differ while their ``same`` part's actions agree."""
    ids = sorted(actions)
    return [(a, b) for a, b in combinations(ids, 2) if actions[a][part] != actions[b][part]
            and (same is None or actions[a][same] == actions[b][same])]


def study_groups(actions: dict[str, dict[str, str]], encoder: str) -> dict[str, list[tuple[str, str]]]:
    """Motion pairs to probe an encoder with, by the part that differs.

    A part encoder p is probed with pairs differing in p, and for every other part q with pairs
    differing in q but doing the same with p. The whole-body encoder is probed with pairs that
    differ in exactly one part.
    """
    if encoder not in PART_NAMES:
        return single_part_differences(actions)
    return {q: pairs_differing_in(actions, q, None if q == encoder else encoder) for q in PART_NAMES}


def pair_study(seg_ids: list[str], text: np.ndarray, motion: np.ndarray,
               groups: dict[str, list[tuple[str, str]]]) -> dict[str, dict[str, float]]:
    """Per differing part: number of pairs, 2-way text->motion accuracy (%) and mean motion-latent cosine."""
    row = {s: i for i, s in enumerate(seg_ids)}
    sims = cosine_similarities(text, motion)
    motion_sims = cosine_similarities(motion, motion)
    out = {}
    for part, pairs in groups.items():
        pairs = [(row[a], row[b]) for a, b in pairs if a in row and b in row]
        if not pairs:
            continue
        wins = []
        for a, b in pairs:
            for x, y in ((a, b), (b, a)):
                wins.append(1.0 if sims[x, x] > sims[x, y] else 0.5 if sims[x, x] == sims[x, y] else 0.0)
        out[part] = {"pairs": len(pairs), "accuracy": float(100.0 * np.mean(wins)),
                     "motion_cosine": float(np.mean([motion_sims[a, b] for a, b in pairs]))}
    return out
