"""Small fake inputs for the TMR tests: a features folder, a caption table, text-embedding objects, tiny TMRs."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from motion.core.parts import FEATURE_DIM, PART_NAMES, TEXT_SLOTS
from motion.datasets import feature_dims
from tests.support.stores import write_feature_store

ACTIONS = ("waves", "kicks", "jumps", "spins")
VERBS = ("a person", "someone", "the man")


class FakeEmbeddings:
    """Deterministic stand-in for TextEmbeddings: one hashed random vector per word."""

    def __init__(self, token_dim: int = 16) -> None:
        self.token_dim = token_dim
        self.sentence_dim = token_dim

    def tokens(self, text: str) -> np.ndarray:
        """(L, token_dim) word vectors, with a start token."""
        words = ["<cls>", *text.lower().split()]
        return np.stack([np.random.default_rng(zlib.crc32(w.encode())).normal(size=self.token_dim)
                         for w in words]).astype(np.float32)

    def sentence(self, text: str) -> np.ndarray:
        """L2-normalised mean of the content-word vectors (so paraphrases stay apart)."""
        v = self.tokens(text)[1:].mean(axis=0)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def sentences(self, texts: list[str]) -> np.ndarray:
        """Stacked sentence embeddings."""
        return np.stack([self.sentence(t) for t in texts]) if texts else np.zeros((0, self.sentence_dim), np.float32)

    def __contains__(self, text: str) -> bool:
        return True


def make_motion(action: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, 263) features: an action-specific oscillation of every dim, plus noise."""
    feats = 0.1 * rng.normal(size=(frames, FEATURE_DIM)).astype(np.float32)
    t = np.arange(frames)[:, None]
    pattern = np.random.default_rng(100 + action).normal(size=FEATURE_DIM)
    feats += (np.sin(0.2 * (action + 1) * t) * pattern).astype(np.float32)
    return feats


def make_fake_data(root: Path, num_motions: int = 24, captions: int = 2, seed: int = 0) -> tuple[Path, Path]:
    """Write features (the clip store, part_stats.npz, splits) and texts (part_texts.parquet); return both folders."""
    rng = np.random.default_rng(seed)
    features, texts = root / "features", root / "texts"
    (features / "splits").mkdir(parents=True)
    texts.mkdir()
    rows, ids, clips = [], [], {}
    for m in range(num_motions):
        motion_id = f"{m:06d}"
        action = m % len(ACTIONS)
        frames = int(rng.integers(30, 60))
        clips[motion_id] = make_motion(action, frames, rng)
        ids.append(motion_id)
        for c in range(captions):
            caption = f"{VERBS[(m + c) % len(VERBS)]} {ACTIONS[action]}"
            row = {"seg_id": f"{motion_id}_{c}", "motion_id": motion_id, "caption_index": c, "caption": caption,
                   "start": 0.0, "end": 0.0, "backend": "fake"}
            for p in PART_NAMES:
                row[f"{p}_action"] = ACTIONS[action] if p == "right_arm" else "idle"
                row[f"{p}_text"] = f"right arm {ACTIONS[action]}" if p == "right_arm" else "does nothing"
            rows.append(row)
    write_feature_store(features, clips)
    pd.DataFrame(rows).to_parquet(texts / "part_texts.parquet", index=False)
    train, val, test = ids[: num_motions // 2], ids[num_motions // 2: 3 * num_motions // 4], ids[3 * num_motions // 4:]
    for split, split_ids in (("train", train), ("val", val), ("test", test), ("all", ids)):
        (features / "splits" / f"{split}.txt").write_text("".join(i + "\n" for i in split_ids))
    stacked = np.concatenate([clips[i] for i in train])
    stats = {}
    for name in TEXT_SLOTS:
        dims = feature_dims(name)
        part = stacked if dims is None else stacked[:, dims]
        stats[f"{name}_mean"], stats[f"{name}_std"] = part.mean(0), part.std(0)
    np.savez(features / "part_stats.npz", **stats)
    return features, texts


class FakeEncoder:
    """A deterministic stand-in for the embed_texts encoder: one 8-d token per word."""

    name, cache_id, token_dim, sentence_dim = "fake", "fake:words", 8, 8

    def encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Token features per word (seeded by the word) and their normalised mean."""
        tokens = [np.stack([np.random.default_rng(sum(map(ord, w))).standard_normal(8) for w in t.split()])
                  .astype(np.float32) for t in texts]
        sentences = np.stack([t.mean(0) / np.linalg.norm(t.mean(0)) for t in tokens])
        return tokens, sentences


def write_tmr_folders(root: Path, known: list[str]) -> None:
    """Seven tiny TMRs (latent 4, token 8) under root/tmr and an embed_texts folder holding ``known``."""
    import torch

    from models.tmr import TMR, TMRConfig, save_tmr
    from motion.core.parts import PART_DIMS
    from motion.text.cache import ArrayCache
    from motion.text.embeddings import write_embeddings

    torch.manual_seed(0)
    for slot in TEXT_SLOTS:
        dim = FEATURE_DIM if slot == "whole_body" else PART_DIMS[slot]
        cfg = TMRConfig(motion_dim=dim, token_dim=8, latent_dim=4, ff_size=8, num_layers=1, num_heads=2, dropout=0.0)
        save_tmr(TMR(cfg), root / "tmr" / slot)
    encoder = FakeEncoder()
    cache = ArrayCache(root / "cache" / "embeddings")
    tokens, sentences = encoder.encode(known)
    cache.add(known, tokens, sentences)
    write_embeddings(root / "embeddings", known, cache, encoder)
