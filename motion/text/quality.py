"""Measures of part attribution: which of the six parts a splitter says move, against a reference.

The BABEL reference holds, per action label, three GPT-3 answers listing body-part words. Its
words are mapped onto LGTM's six parts by anatomy: neck -> head; torso, waist and buttocks ->
torso (LGTM's prompt itself maps "hip" to torso); "global orientation" -> torso, because LGTM keeps
the root's rotation and trajectory in the torso part. A part is in the reference set when at
least two of the three answers name it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from motion.core.parts import PART_NAMES

BABEL_WORDS: dict[str, tuple[str, ...]] = {
    "right arm": ("right_arm",), "left arm": ("left_arm",),
    "right leg": ("right_leg",), "left leg": ("left_leg",),
    "neck": ("head",), "head": ("head",),
    "torso": ("torso",), "waist": ("torso",), "buttocks": ("torso",), "global orientation": ("torso",),
}


def babel_answer_parts(answer: str) -> set[str]:
    """The six-part set named by one GPT-3 answer (``"Answer: right arm\\nleft arm"``)."""
    body = re.sub(r"^\s*answer\s*:\s*", "", answer.strip(), flags=re.I)
    parts: set[str] = set()
    for line in body.splitlines():
        parts.update(BABEL_WORDS.get(line.strip().lower().rstrip("."), ()))
    return parts


def majority_parts(answers: Iterable[str], quorum: int = 2) -> set[str]:
    """Parts named by at least ``quorum`` of the answers."""
    sets = [babel_answer_parts(a) for a in answers]
    return {p for p in PART_NAMES if sum(p in s for s in sets) >= quorum}


def set_scores(predicted: Mapping[str, set[str]], reference: Mapping[str, set[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 of predicted part sets, plus exact-set accuracy, over the shared keys."""
    keys = sorted(set(predicted) & set(reference))
    tp = sum(len(predicted[k] & reference[k]) for k in keys)
    fp = sum(len(predicted[k] - reference[k]) for k in keys)
    fn = sum(len(reference[k] - predicted[k]) for k in keys)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    exact = sum(predicted[k] == reference[k] for k in keys) / len(keys) if keys else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "exact_set": exact, "count": float(len(keys))}


def part_accuracy(predicted: Mapping[str, set[str]], reference: Mapping[str, set[str]]) -> float:
    """Share of (caption, part) pairs whose idle / moving state matches the reference (six per caption)."""
    keys = sorted(set(predicted) & set(reference))
    if not keys:
        return 0.0
    hits = sum((p in predicted[k]) == (p in reference[k]) for k in keys for p in PART_NAMES)
    return hits / (len(keys) * len(PART_NAMES))
