"""Official-format release files for end-to-end tests: TMR run folders, TMR stats, a GloVe folder, a test split.

The LGTM checkpoint and the T2M evaluator come from the shared goldens (``lgtm_official/``); what they do not
cover is written here in the official layouts: the seven TMR run folders (``tmr_humanml3d_guoh3dfeats/`` and
``body_part_tmr/<part>/``, sized to the checkpoint's text latents), TMR's ``stats/`` folder, HumanML3D-style
Mean/Std, T2M's GloVe files and meta statistics, and a small test split with captions and part texts.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import torch

from models.official.fakes import write_small_official_tmr
from motion.core.parts import FEATURE_DIM, PART_INDICES, PART_NAMES, TEXT_SLOTS
from tests.support.stores import write_caption_files, write_feature_store

ACTIONS = ("waves the right hand", "kicks with the left leg", "nods the head", "bends the torso")
ACTION_PART = ("right_arm", "left_leg", "head", "torso")
TOKEN_DIM = 768  # DistilBERT's last hidden state, what the official TMR text encoders read


def write_official_tmrs(root: Path, latent_dim: int) -> Path:
    """The seven TMRs in the release layout under ``root`` (small random weights, ``latent_dim``-d latents)."""
    for slot in TEXT_SLOTS:
        folder = root / ("tmr_humanml3d_guoh3dfeats" if slot == "whole_body" else f"body_part_tmr/{slot}")
        write_small_official_tmr(folder, slot, latent_dim=latent_dim, seed=len(slot))
    return root


def write_tmr_stats(root: Path, mean: np.ndarray, std: np.ndarray) -> Path:
    """TMR's ``stats/humanml3d[_<part>]/guoh3dfeats/{mean,std}.pt`` (torch tensors) from a 263-d mean/std."""
    for slot in TEXT_SLOTS:
        dims = slice(None) if slot == "whole_body" else PART_INDICES[slot]
        folder = root / ("humanml3d" if slot == "whole_body" else f"humanml3d_{slot}") / "guoh3dfeats"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(torch.from_numpy(np.ascontiguousarray(mean[dims])), folder / "mean.pt")
        torch.save(torch.from_numpy(np.ascontiguousarray(std[dims])), folder / "std.pt")
    return root


def write_glove(folder: Path, words: list[str], dim: int = 300) -> Path:
    """T2M's GloVe files (``our_vab_data.npy``, ``our_vab_words.pkl``, ``our_vab_idx.pkl``) for ``words``."""
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = ["unk", "sos", "eos", *sorted(set(words) - {"unk", "sos", "eos"})]
    np.save(folder / "our_vab_data.npy",
            np.random.default_rng(0).standard_normal((len(vocabulary), dim)).astype(np.float32))
    with open(folder / "our_vab_words.pkl", "wb") as f:
        pickle.dump(vocabulary, f)
    with open(folder / "our_vab_idx.pkl", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(vocabulary)}, f)
    return folder


def write_test_split(root: Path, num_motions: int, seed: int = 0) -> dict[str, Path]:
    """Features (the clip store, Mean/Std, part_stats.npz, splits/{test,train}.txt), captions and part texts of a test
    split; returns the folders by params ``paths`` key."""
    rng = np.random.default_rng(seed)
    features, texts, poses = root / "features", root / "texts", root / "poses"
    for d in (features / "splits", texts):
        d.mkdir(parents=True)
    ids, parts, stacked, clips, captions = [], {}, [], {}, {}
    for m in range(num_motions):
        mid, action, frames = f"{m:06d}", m % len(ACTIONS), 48 + (m % 3) * 8
        pattern = np.random.default_rng(100 + action).normal(size=FEATURE_DIM)
        feats = np.sin(0.2 * (action + 1) * np.arange(frames)[:, None]) * pattern \
            + 0.1 * rng.normal(size=(frames, FEATURE_DIM))
        clips[mid] = feats.astype(np.float32)
        stacked.append(feats)
        caption = f"a person {ACTIONS[action]}"
        captions[mid] = f"{caption}#a/DET person/NOUN {ACTIONS[action].split()[0]}/VERB#0.0#0.0\n"
        parts[f"{mid}_0"] = {p: {"action": "x", "text": ACTIONS[action] if p == ACTION_PART[action] else "does nothing"}
                             for p in PART_NAMES}
        ids.append(mid)
    write_feature_store(features, clips)
    write_caption_files(poses, captions)
    (features / "splits" / "test.txt").write_text("\n".join(ids) + "\n")
    (features / "splits" / "train.txt").write_text("\n".join(ids) + "\n")  # the study's vocabulary check reads it
    flat = np.concatenate(stacked)
    np.save(features / "Mean.npy", flat.mean(0).astype(np.float32))
    np.save(features / "Std.npy", (flat.std(0) + 0.1).astype(np.float32))
    stats = {"whole_body_mean": flat.mean(0), "whole_body_std": flat.std(0)}
    for p in PART_NAMES:
        stats[f"{p}_mean"], stats[f"{p}_std"] = flat[:, PART_INDICES[p]].mean(0), flat[:, PART_INDICES[p]].std(0)
    np.savez(features / "part_stats.npz", **stats)
    (texts / "body_part_annotations.json").write_text(json.dumps(parts))
    return {"features": features, "texts": texts, "poses": poses}


class FakeDistilBert:
    """A deterministic stand-in for DistilBERT (no weights offline): one seeded 768-d token per word, float32.

    ``cache_id`` is the real encoder's, so the embed_texts folder it writes reads as DistilBERT's.
    """

    name, cache_id, token_dim, sentence_dim = "distilbert", "distilbert:distilbert-base-uncased", TOKEN_DIM, 8

    def encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Token features per word (seeded by the word) and a normalised sentence vector."""
        import zlib

        tokens = [np.stack([np.random.default_rng(zlib.crc32(w.encode())).standard_normal(TOKEN_DIM)
                            for w in t.split()]).astype(np.float32) for t in texts]
        sentences = np.stack([t[:, :8].mean(0) / np.linalg.norm(t[:, :8].mean(0)) for t in tokens])
        return tokens, sentences.astype(np.float32)


DISTILBERT = "distilbert-base-uncased"
FAKE_REVISION = "0" * 40  # the snapshot folder's name (a commit hash on the hub)


def write_fake_distilbert(hub_cache: Path, words: tuple[str, ...] = (), seed: int = 0) -> Path:
    """A tiny random DistilBERT in the Hugging Face hub cache layout, where the real one would be.

    ``hub_cache/models--distilbert-base-uncased/snapshots/<rev>/`` holds ``config.json``, ``model.safetensors``
    and the tokenizer files (``vocab.txt`` + ``tokenizer.json``), ``refs/main`` names ``<rev>``: with
    ``HF_HUB_CACHE=hub_cache`` and ``HF_HUB_OFFLINE=1`` the project's own DistilBERT loading (transformers
    ``AutoConfig``/``AutoTokenizer``/``AutoModel``, ``local_files_only``) reads it unchanged. It is sized like the
    real model where the pipeline can see it (768-d hidden states, the official TMRs' token width, uncased
    WordPiece with the BERT special tokens) and tiny elsewhere (1 layer, 4 heads, 64-unit feed-forward). The
    vocabulary is the letters and digits as word starts and ``##`` pieces (so any text tokenises), the ASCII
    punctuation and ``words``. Returns the snapshot folder.
    """
    import string

    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    repo = Path(hub_cache) / f"models--{DISTILBERT}"
    snapshot = repo / "snapshots" / FAKE_REVISION
    snapshot.mkdir(parents=True)
    pieces = [*string.ascii_lowercase, *string.digits]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *pieces, *string.punctuation, *(f"##{p}" for p in pieces)]
    vocab += sorted({w.lower() for w in words} - set(vocab))
    (snapshot / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    DistilBertTokenizerFast(vocab_file=str(snapshot / "vocab.txt"), do_lower_case=True,
                            model_max_length=512).save_pretrained(snapshot)
    torch.manual_seed(seed)
    config = DistilBertConfig(vocab_size=len(vocab), dim=TOKEN_DIM, n_layers=1, n_heads=4, hidden_dim=64,
                              max_position_embeddings=128)
    DistilBertModel(config).eval().save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(FAKE_REVISION, encoding="utf-8")
    return snapshot


def tiny_design(frames: int = 40) -> dict:
    """A one-pair prompt-study design (``prompts/ik_fk_pairs.yaml``'s format) for runs on the release."""
    idle = {"head": "does nothing", "left_arm": "does nothing", "torso": "does nothing", "left_leg": "does nothing",
            "right_leg": "does nothing"}
    return {
        "constraints": {"touch_shoulder": {"goal": "the right hand touches the left shoulder",
                                           "guided": "near right_wrist left_shoulder 0.05", "frames": frames}},
        "pairs": [{"id": "1", "constraint": "touch_shoulder",
                   "ik": {"text": "a man raises the right hand and touches the left shoulder",
                          "parts": {**idle, "right_arm": "raises the right hand and touches the left shoulder"}},
                   "fk": {"text": "a man swings the right arm across the chest with elbow bent",
                          "parts": {**idle, "right_arm": "swings the right arm across the chest with elbow bent"}}}],
    }
