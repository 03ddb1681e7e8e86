"""Stage embed_texts: token features and sentence vectors of every unique caption and part text.

Token features are stored as ``embed_texts.token_dtype`` (float16 by default; float32 for the official TMRs).
Reads ``paths``, ``embed_texts`` and ``compute``, and ${paths.texts}/part_texts.parquet; writes
${paths.embeddings} (texts.parquet, tokens.npy, token_offsets.npy, sentences.npy, meta.json) whole
or not at all. Features are cached per (encoder, text) in ${paths.cache}/embeddings, so adding
captions only encodes the new texts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from motion.core.io import atomic_dir
from motion.text.cache import ArrayCache, cache_key
from motion.text.embeddings import embed_with_cache, encoder_settings, make_encoder, unique_texts, write_embeddings
from stages.entry import stage_main
from stages.settings import Settings


def cache_folder(cache_id: str, dtype: np.dtype) -> str:
    """The feature cache's folder of an encoder and token dtype (float16: the name it always had)."""
    return cache_key(cache_id if dtype == np.float16 else f"{cache_id}:{dtype.name}")[:16]


def run(settings: Settings) -> None:
    """Embed all texts with the configured encoder, reusing cached features."""
    paths, section = settings.paths, settings.embed_texts
    if settings.compute.threads.embed_texts:
        torch.set_num_threads(settings.compute.threads.embed_texts)
    texts = unique_texts(Path(paths.texts) / "part_texts.parquet")
    encoder = make_encoder(encoder_settings(section, settings.compute.device))
    dtype = np.dtype(section.token_dtype)
    cache = ArrayCache(Path(paths.cache) / "embeddings" / cache_folder(encoder.cache_id, dtype), dtype)
    new = embed_with_cache(texts, encoder, cache, section.batch_size)
    with atomic_dir(paths.embeddings) as tmp:
        write_embeddings(tmp, texts, cache, encoder, dtype)
    print(f"embed_texts: {len(texts)} texts ({new} newly encoded, {len(texts) - new} from cache) with "
          f"{encoder.cache_id}: tokens {encoder.token_dim}-d, sentences {encoder.sentence_dim}-d "
          f"-> {paths.embeddings}")


def main() -> None:
    """Run the stage with the settings of params.yaml."""
    stage_main("embed_texts", run)


if __name__ == "__main__":
    main()
