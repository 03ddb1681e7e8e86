"""The seven frozen TMR text latents per caption (whole caption + six part texts), computed once and cached.

LGTM conditions on TMR text latents that never change during training, so they are encoded once
per unique text and stored in one ``.npz``: ``seg_ids`` (N,), ``index`` (N, 7) int32 rows into the
per-slot tables ``latents_<slot>`` (U_slot, 256) float32 whose texts are ``texts_<slot>`` (U_slot,).
Slots follow ``motion.core.parts.TEXT_SLOTS`` (whole_body, then PART_NAMES). Who computes latents is an
injectable ``TextLatentProvider`` chosen once by ``text_latents`` (params ``lgtm.text_latents``): the real
one runs the trained TMR text encoders (in eval mode) on token features (``TokenSource``: those of
``embed_texts``, new texts encoded on the fly); ``RandomTextLatents`` serves tests and smoke runs.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from motion.core.errors import DataError
from motion.core.io import atomic_path
from motion.core.parts import TEXT_SLOTS

TEXT_LATENT_SOURCES: tuple[str, ...] = ("tmr", "random")

# A text -> its token features (L, token_dim) float32, as the TMR text encoders read them.
Tokens = Callable[[str], np.ndarray]


class TextLatentProvider(Protocol):
    """Anything that maps texts to TMR-like latents for one slot (whole_body or a part)."""

    dim: int
    key: str                   # names the latents in cache keys ("tmr", "random:<seed>")
    inputs: tuple[Path, ...]   # the files the latents depend on (fingerprinted with the model)

    def encode(self, slot: str, texts: Sequence[str]) -> np.ndarray:
        """Latents (len(texts), dim) float32 of ``texts`` under the slot's text encoder."""
        ...


class RandomTextLatents:
    """Deterministic pseudo-latents: a unit-variance Gaussian vector seeded by (seed, slot, text)."""

    def __init__(self, dim: int, seed: int) -> None:
        self.dim = dim
        self.seed = seed
        self.key, self.inputs = f"random:{seed}", ()

    def encode(self, slot: str, texts: Sequence[str]) -> np.ndarray:
        """One fixed random vector per distinct (slot, text)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            digest = hashlib.sha256(f"{self.seed}\x00{slot}\x00{text}".encode()).digest()
            out[i] = np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal(self.dim)
        return out


class TokenSource:
    """Token features of a text: from the embed_texts output when there, else encoded with its encoder.

    ``make_encoder`` builds the encoder configured in params ``embed_texts`` (only when a text is missing).
    """

    def __init__(self, embeddings_dir: str | Path, make_encoder: Callable[[], Any]) -> None:
        from motion.text.embeddings import TextEmbeddings

        self.embeddings = TextEmbeddings.load(embeddings_dir)
        self.make_encoder = make_encoder
        self._encoder: Any = None

    def __call__(self, text: str) -> np.ndarray:
        """(L, token_dim) float32 token features of ``text`` (rounded to the stored ones' dtype, float16 by default)."""
        if text in self.embeddings:
            return self.embeddings.tokens(text)
        if self._encoder is None:
            self._encoder = self.make_encoder()
            if self._encoder.cache_id != self.embeddings.encoder:
                raise DataError(self.embeddings.folder, f"was written by {self.embeddings.encoder} but params "
                                f"embed_texts selects {self._encoder.cache_id}", "rerun `dvc repro embed_texts`")
        tokens, _ = self._encoder.encode([text])
        return tokens[0].astype(self.embeddings.token_dtype).astype(np.float32)


class TMRTextLatents:
    """Latent means of the trained TMR text encoders (``<tmr_root>/<slot>/``) on the texts' token features.

    Texts are encoded in batches of ``batch_size`` (zero-padded to the longest, masked): the batches a caller
    passes decide the padding, so callers that must reproduce earlier numbers keep their batching.
    """

    def __init__(self, tmr_root: str | Path, tokens: Tokens, device: str = "cpu", batch_size: int = 256,
                 token_files: Sequence[Path] = ()) -> None:
        self.tmr_root = Path(tmr_root)
        self.tokens = tokens
        self.key = "tmr"
        self.inputs = tuple(sorted(self.tmr_root.glob("*/model.safetensors"))) + tuple(token_files)
        self.device = device
        self.batch_size = batch_size
        self._models: dict[str, object] = {}
        self.dim = int(self._model(TEXT_SLOTS[0]).cfg.latent_dim)

    def _model(self, slot: str):  # noqa: ANN202 - models.tmr.TMR
        if slot not in self._models:
            from models.tmr import load_tmr

            self._models[slot] = load_tmr(self.tmr_root / slot, self.device)
        return self._models[slot]

    def encode(self, slot: str, texts: Sequence[str]) -> np.ndarray:
        """Encode texts in batches of padded token features with the slot's frozen TMR text encoder."""
        import torch

        from motion.eval.evaluation import pad_batch

        model = self._model(slot)
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch, mask = pad_batch([self.tokens(t) for t in texts[start:start + self.batch_size]])
                mu = model.encode_text(torch.from_numpy(batch).to(self.device), torch.from_numpy(mask).to(self.device))
                out.append(mu.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


def text_latents(source: str, *, dim: int, seed: int, tmr_root: str | Path, embeddings: str | Path,
                 tokens: Callable[[], Tokens] | None = None, device: str = "cpu") -> TextLatentProvider:
    """The provider params ``lgtm.text_latents`` names: ``tmr`` (the frozen TMR text encoders of ``tmr_root``)
    or ``random`` (``dim``-d pseudo-latents seeded by ``seed``, for smoke runs and tests).

    The TMR encoders read the token features of ``embeddings`` (the embed_texts output), or those ``tokens()``
    returns (e.g. a ``TokenSource`` that also encodes new prompts); neither is opened for random latents.
    """
    if source == "random":
        return RandomTextLatents(dim, seed=seed)
    if source == "tmr":
        from motion.text.embeddings import TextEmbeddings

        source_tokens = tokens() if tokens is not None else TextEmbeddings.load(embeddings).tokens
        return TMRTextLatents(tmr_root, source_tokens, device=device, token_files=[Path(embeddings) / "tokens.npy"])
    raise ValueError(f"lgtm.text_latents is {source!r}; choose one of {', '.join(TEXT_LATENT_SOURCES)}")


def slot_latents(provider: TextLatentProvider, texts: Sequence[Sequence[str]]) -> np.ndarray:
    """(N, 7, dim) latents of N captions' 7 texts (TEXT_SLOTS order): one ``encode`` call per slot."""
    return np.stack([provider.encode(slot, [t[k] for t in texts]) for k, slot in enumerate(TEXT_SLOTS)], axis=1)


class TextLatentCache:
    """seg_id -> (7, dim) latents, backed by per-slot tables of unique texts."""

    def __init__(self, seg_ids: np.ndarray, index: np.ndarray, tables: dict[str, np.ndarray],
                 texts: dict[str, np.ndarray]) -> None:
        self.seg_ids = seg_ids
        self.index = index
        self.tables = tables
        self.texts = texts
        self.row = {str(s): i for i, s in enumerate(seg_ids)}
        self.dim = int(tables[TEXT_SLOTS[0]].shape[1])

    def __contains__(self, seg_id: str) -> bool:
        return seg_id in self.row

    def __len__(self) -> int:
        return len(self.seg_ids)

    def get(self, seg_id: str) -> np.ndarray:
        """The 7 latents (7, dim) of one caption in TEXT_SLOTS order."""
        row = self.index[self.row[seg_id]]
        return np.stack([self.tables[s][row[k]] for k, s in enumerate(TEXT_SLOTS)])

    def save(self, path: str | Path) -> None:
        """Write the cache as one .npz, atomically."""
        arrays: dict[str, np.ndarray] = {"seg_ids": self.seg_ids.astype(str), "index": self.index.astype(np.int32)}
        for s in TEXT_SLOTS:
            arrays[f"latents_{s}"] = self.tables[s].astype(np.float32)
            arrays[f"texts_{s}"] = self.texts[s].astype(str)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> TextLatentCache:
        """Read a cache written by ``save``."""
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "text-latent cache is missing",
                            "run `python -m stages.train_lgtm` (it builds the cache first)")
        with np.load(path) as data:
            missing = [k for k in ["seg_ids", "index"] + [f"latents_{s}" for s in TEXT_SLOTS] if k not in data]
            if missing:
                raise DataError(path, f"text-latent cache lacks {missing}", "delete it and rerun train_lgtm")
            return cls(data["seg_ids"], data["index"], {s: data[f"latents_{s}"] for s in TEXT_SLOTS},
                       {s: data[f"texts_{s}"] for s in TEXT_SLOTS})


def build_text_latent_cache(seg_ids: Sequence[str], texts: Sequence[Sequence[str]],
                            provider: TextLatentProvider) -> TextLatentCache:
    """Encode each distinct text once per slot; ``texts[i]`` holds seg i's 7 texts in TEXT_SLOTS order."""
    if any(len(t) != len(TEXT_SLOTS) for t in texts):
        raise ValueError(f"every caption needs {len(TEXT_SLOTS)} texts in the order {TEXT_SLOTS}")
    index = np.zeros((len(seg_ids), len(TEXT_SLOTS)), dtype=np.int32)
    tables: dict[str, np.ndarray] = {}
    uniques: dict[str, np.ndarray] = {}
    for k, slot in enumerate(TEXT_SLOTS):
        column = [t[k] for t in texts]
        unique = sorted(set(column))
        position = {t: i for i, t in enumerate(unique)}
        index[:, k] = [position[t] for t in column]
        tables[slot] = provider.encode(slot, unique).astype(np.float32)
        uniques[slot] = np.array(unique, dtype=str)
    return TextLatentCache(np.array(list(seg_ids), dtype=str), index, tables, uniques)
