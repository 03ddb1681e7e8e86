"""Persistent caches that let text stages rerun for free and resume after an interruption.

``JsonCache``: an append-only JSON-lines file of ``{"key": ..., "value": ...}`` records, flushed
after every record, so a run killed half-way keeps everything it finished (a torn last line is
ignored). ``ArrayCache``: a folder of ``.npz`` shards mapping texts to a token matrix and a sentence
vector; every run that computes something new adds one shard, written atomically.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from motion.core.io import atomic_path

log = logging.getLogger(__name__)


def cache_key(*parts: Any) -> str:
    """A stable hex digest of the JSON form of ``parts`` (e.g. backend, model, prompt version, caption)."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


class JsonCache:
    """Key -> JSON value store backed by an append-only JSON-lines file; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}
        if self.path.is_file():
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        record = json.loads(line)
                        self._data[record["key"]] = record["value"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # a torn line from an interrupted run

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value for ``key`` or ``default``."""
        return self._data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` and append it to the file at once (flushed and synced)."""
        line = json.dumps({"key": key, "value": value}, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self._data[key] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                if f.tell() > 0 and not self._ends_with_newline():
                    f.write("\n")  # isolate a torn line left by a killed run
                f.write(line)
                f.flush()
                os.fsync(f.fileno())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"


def _read_shard(shard: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """texts, offsets, tokens and sentences of one ArrayCache shard; ValueError when they do not fit together."""
    with np.load(shard, allow_pickle=False) as z:
        texts = [str(t) for t in z["texts"]]
        offsets, tokens, sentences = z["offsets"], z["tokens"], z["sentences"]
    n = len(texts)
    if (offsets.shape != (n + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 0)
            or tokens.ndim != 2 or offsets[-1] != tokens.shape[0] or sentences.ndim != 2 or sentences.shape[0] != n):
        raise ValueError("texts, offsets, tokens and sentences do not match")
    if not (np.all(np.isfinite(tokens)) and np.all(np.isfinite(sentences))):
        raise ValueError("non-finite features")
    return texts, offsets, tokens, sentences


class ArrayCache:
    """Text -> (tokens (L, D) float16, sentence (D_s,) float32) store kept as ``.npz`` shards in a folder.

    ``token_dtype`` float32 keeps the tokens unrounded (use a folder of its own: shards hold one dtype).
    """

    def __init__(self, folder: str | Path, token_dtype: type = np.float16) -> None:
        self.folder = Path(folder)
        self.token_dtype = np.dtype(token_dtype)
        self._tokens: dict[str, np.ndarray] = {}
        self._sentences: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            try:
                texts, offsets, tokens, sentences = _read_shard(shard)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
                log.warning("%s: corrupt cache shard discarded (%s); its texts are encoded again", shard, err)
                shard.unlink(missing_ok=True)
                continue
            if tokens.dtype != self.token_dtype:
                log.warning("%s: %s tokens in a %s cache; ignored", shard, tokens.dtype, self.token_dtype)
                continue
            for i, text in enumerate(texts):
                self._tokens[text] = tokens[offsets[i]:offsets[i + 1]]
                self._sentences[text] = sentences[i]

    def __contains__(self, text: str) -> bool:
        return text in self._tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def get(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The cached (tokens, sentence) of ``text``; KeyError when absent."""
        return self._tokens[text], self._sentences[text]

    def add(self, texts: list[str], tokens: list[np.ndarray], sentences: np.ndarray) -> None:
        """Store new texts and write them as one more shard (atomically)."""
        if not texts:
            return
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(t) for t in tokens])
        flat = np.concatenate(tokens).astype(self.token_dtype)
        sentences = np.asarray(sentences, dtype=np.float32)
        index = len(list(self.folder.glob("shard-*.npz")))
        name = f"shard-{index:05d}-{cache_key(texts)[:12]}.npz"
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / name) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, texts=np.array(texts, dtype=np.str_), offsets=offsets, tokens=flat, sentences=sentences)
        for i, text in enumerate(texts):
            self._tokens[text] = flat[offsets[i]:offsets[i + 1]]
            self._sentences[text] = sentences[i]
