"""Are the study's prompts held out from the training captions, and how much of their wording did training see?

``vocabulary_overlap`` gives per prompt style (IK-like, FK-like, goal descriptions): how many prompts occur
verbatim inside a training caption (as a word sequence; must be 0), and the mean share of each prompt's word
n-grams (n = 1, 2, 3) that occur anywhere in the training captions. A style whose words the model never saw
is at a disadvantage that has nothing to do with IK or FK, so the two styles' overlaps should be similar.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ORDERS: tuple[int, ...] = (1, 2, 3)
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-case words of a caption (punctuation dropped)."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """The distinct word n-grams of a token sequence."""
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def vocabulary_overlap(prompts: Mapping[str, Sequence[str]], captions: Iterable[str],
                       orders: Sequence[int] = ORDERS) -> dict[str, Any]:
    """Per style: prompt count, prompts found verbatim in a caption, mean n-gram overlap, and the per-prompt rows."""
    caption_words = [words(c) for c in captions]
    seen = {n: set().union(*(ngrams(w, n) for w in caption_words)) if caption_words else set() for n in orders}
    joined = [" " + " ".join(w) + " " for w in caption_words]
    styles: dict[str, Any] = {}
    for style, texts in prompts.items():
        rows = []
        for text in texts:
            w = words(text)
            overlap = {str(n): (len(ngrams(w, n) & seen[n]) / len(ngrams(w, n)) if ngrams(w, n) else 0.0)
                       for n in orders}
            verbatim = any(f" {' '.join(w)} " in c for c in joined)
            rows.append({"prompt": text, "verbatim": verbatim, "overlap": overlap})
        styles[style] = {"prompts": len(rows), "verbatim": sum(r["verbatim"] for r in rows),
                         "overlap": {str(n): (sum(r["overlap"][str(n)] for r in rows) / len(rows) if rows else 0.0)
                                     for n in orders},
                         "rows": rows}
    note = (f"{len(caption_words)} training captions. 'found': prompts occurring word for word inside a training "
            "caption; n-gram overlap: share of a prompt's distinct word n-grams that occur in any training caption.")
    return {"orders": list(orders), "captions": len(caption_words), "styles": styles, "note": note}
