"""Determinism from scratch: text features do not depend on the persistent cache's history."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from motion.text.cache import ArrayCache
from motion.text.embeddings import canonical_batches, embed_with_cache, encoder_settings, make_encoder, write_embeddings
from tests.support.params import settings_with

WORDS = "a person walks forward then turns left and raises the right arm waves slowly jumps kicks".split()


def _texts(seed: int, n: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return sorted({" ".join(rng.choice(WORDS, int(rng.integers(2, 30)))) for _ in range(n)})


def _digest(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


class _Lengths:
    """A stand-in with length buckets (one per word count)."""

    name = "lengths"

    def length_bucket(self, text: str) -> int:
        return len(text.split())


def test_canonical_batches_have_one_shape_and_depend_on_each_text_only():
    batches = canonical_batches(["a b", "c", "d e", "f g", "h"], _Lengths(), batch_size=2)
    assert all(len(b) == 2 for b in batches)
    assert batches == [["a b", "d e"], ["f g", "f g"], ["c", "h"]]
    for batch in batches:  # one length bucket per batch
        assert len({len(t.split()) for t in batch}) == 1


def test_cold_run_equals_warm_run_from_a_cache_of_other_texts(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    encoder = make_encoder(encoder_settings(settings_with({}).embed_texts, "cpu"))
    wanted = _texts(0, 40)
    other = _texts(1, 40) + wanted[::3]  # a different history: other texts, some of the wanted ones
    cold = ArrayCache(tmp_path / "cold")
    assert embed_with_cache(wanted, encoder, cold, batch_size=16, progress=False) == len(wanted)
    write_embeddings(tmp_path / "out_cold", wanted, cold, encoder)

    warm = ArrayCache(tmp_path / "warm")
    embed_with_cache(other, encoder, warm, batch_size=16, progress=False)
    new = embed_with_cache(wanted, encoder, ArrayCache(tmp_path / "warm"), batch_size=16, progress=False)
    assert 0 < new < len(wanted)
    write_embeddings(tmp_path / "out_warm", wanted, ArrayCache(tmp_path / "warm"), encoder)
    assert _digest(tmp_path / "out_cold") == _digest(tmp_path / "out_warm")
