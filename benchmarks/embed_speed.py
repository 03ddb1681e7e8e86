"""Speed of embed_texts: model load, encoding ~3,000 unique texts, and a fully cached rerun.

Texts are real KIT-ML captions plus their rule-based part texts (../shared/reference/kitml).
Usage: python -m benchmarks.embed_speed [--encoder minilm] [--texts 3000] [--threads 2] [--batch-size 256]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from benchmarks import settings_for
from motion.text.cache import ArrayCache
from motion.text.embeddings import embed_with_cache, encoder_settings, make_encoder, write_embeddings
from motion.text.rules import split_caption

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def main() -> None:
    """Print load, encode and cached-rerun times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = json.loads((REFERENCE / "kitml" / "annotations.json").read_text(encoding="utf-8"))
    captions = sorted({a["text"] for v in data.values() for a in v["annotations"]})
    texts: set[str] = set()
    for caption in captions:
        if len(texts) >= args.texts:
            break
        texts.add(caption)
        texts.update(part["text"] for part in split_caption(caption).values())
    texts_list = sorted(texts)[: args.texts]
    start = time.perf_counter()
    settings = settings_for()
    section = dataclasses.replace(settings.embed_texts, encoder=args.encoder)
    encoder = make_encoder(encoder_settings(section, settings.compute.device))
    loaded = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cache = ArrayCache(Path(tmp) / "cache")
        embed_with_cache(texts_list, encoder, cache, args.batch_size, progress=False)
        encoded = time.perf_counter()
        write_embeddings(Path(tmp) / "out", texts_list, ArrayCache(Path(tmp) / "cache"), encoder)
        rerun = time.perf_counter()
        assert embed_with_cache(texts_list, encoder, ArrayCache(Path(tmp) / "cache"), progress=False) == 0
        cached = time.perf_counter() - rerun
    print(f"{args.encoder}: {len(texts_list)} texts, {args.threads} threads, batch {args.batch_size}")
    print(f"  model load {loaded - start:.1f} s; encode {encoded - loaded:.1f} s "
          f"({len(texts_list) / (encoded - loaded):.0f} texts/s); write {rerun - encoded:.2f} s; "
          f"cached rerun {cached:.2f} s; total {rerun - start:.1f} s")


if __name__ == "__main__":
    main()
