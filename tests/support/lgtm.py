"""Tiny on-disk corpora and model configs shared by the LGTM tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.lgtm import LGTMConfig
from models.text_latents import RandomTextLatents, build_text_latent_cache
from motion.core.parts import FEATURE_DIM, PART_NAMES
from motion.data.captions import read_caption_table, read_part_annotations
from motion.data.clipstore import CAPTION_TABLE
from motion.datasets import LGTMDataset, SpanRule, clip_captions, load_normalisation, read_segments, segment_texts
from tests.support.stores import write_caption_files, write_feature_store

TINY = LGTMConfig(dim=16, conformer_blocks=1, attention_layers=1, heads=2, optimizer_ff=32, smoothnet_hidden=32,
                  smoothnet_res_hidden=16, smoothnet_blocks=1, dropout=0.0, window=24, text_dim=8)


def make_corpus(root: Path, num_motions: int = 6, seed: int = 0) -> dict[str, Path]:
    """Write features/, texts (poses/texts.parquet) and part annotations for a few smooth random motions."""
    rng = np.random.default_rng(seed)
    features, texts = root / "features", root / "poses" / CAPTION_TABLE
    (features / "splits").mkdir(parents=True)
    ids, annotations, clips, captions = [], {}, {}, {}
    for i in range(num_motions):
        mid = f"{i:06d}"
        frames = int(rng.integers(20, 40))
        t = np.linspace(0, 2 * np.pi, frames)[:, None]
        motion = np.sin(t * rng.uniform(0.5, 2, FEATURE_DIM) + rng.uniform(0, 6, FEATURE_DIM)) * rng.uniform(0.5, 2)
        clips[mid] = motion.astype(np.float32)
        captions[mid] = f"a person does move {i}#a/DET#0.0#0.0\nsomeone moves {i}#x/NOUN#0.0#0.0\n"
        annotations[f"{mid}_0"] = {p: {"action": "move", "text": f"{p} moves {i}"} for p in PART_NAMES}
        ids.append(mid)
    write_feature_store(features, clips)
    write_caption_files(texts.parent, captions)
    np.save(features / "Mean.npy", np.zeros(FEATURE_DIM, np.float32))
    np.save(features / "Std.npy", np.ones(FEATURE_DIM, np.float32))
    (features / "splits" / "train.txt").write_text("\n".join(ids) + "\n")
    (features / "splits" / "val.txt").write_text("\n".join(ids[:2]) + "\n")
    (features / "splits" / "test.txt").write_text("\n".join(ids[-2:]) + "\n")
    part_file = root / "texts" / "body_part_annotations.json"
    part_file.parent.mkdir()
    part_file.write_text(json.dumps(annotations))
    return {"features": features, "texts": texts, "parts": part_file}


def make_dataset(paths: dict[str, Path], ids: list[str], window: int, text_dim: int = 8, seed: int = 0) -> LGTMDataset:
    """LGTMDataset over ``ids`` with random text latents of ``text_dim``."""
    segments = read_segments(paths["features"], clip_captions(read_caption_table(paths["texts"]), ids, paths["texts"]),
                             SpanRule("lgtm", 10, 200))
    part_texts = read_part_annotations(paths["parts"], "rerun make_corpus")
    cache = build_text_latent_cache([s.seg_id for s in segments], [segment_texts(s, part_texts) for s in segments],
                                    RandomTextLatents(text_dim, seed=1))
    mean, std = load_normalisation(paths["features"])
    return LGTMDataset(segments, paths["features"], mean, std, cache, window, seed=seed)
