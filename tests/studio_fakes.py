"""A tiny trained workspace for the studio tests, the benchmark and the docs screenshots.

``make_studio_workspace`` writes, under one folder, everything ``python -m tools.studio`` reads through a
params file: plausible motions (forward kinematics of swinging limbs, walking and turning) as HumanML3D
features with Mean/Std, splits and part statistics; captions and part texts (``part_texts.parquet`` and the
LGTM annotation files); seven small TMRs and the token features of every dataset text (the 8-d word
vectors of ``tests.test_generate.FakeEncoder``); and a tiny LGTM trained for a few steps on those motions
(random text latents, with text dropout so guidance applies). Texts never seen need ``fake_encoder`` patched
in as the embed_texts encoder (``patch_encoder``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.core.parts import FEATURE_DIM, PART_DIMS, PART_NAMES
from motion.data.features import extract_features
from motion.datasets import ENCODER_NAMES, feature_dims
from tests.test_generate import FakeEncoder

ACTIONS = (("waves the right hand", "right_arm", 19), ("kicks with the left leg", "left_leg", 4),
           ("raises the left arm", "left_arm", 16), ("nods the head", "head", 12),
           ("walks forward", "right_leg", 2), ("bends the torso", "torso", 3))


def plausible_motion(index: int, frames: int) -> np.ndarray:
    """HumanML3D features (frames - 1, 263) of a body that sways, swings one part strongly and walks a little."""
    rng = np.random.default_rng(index)
    caption, _, joint = ACTIONS[index % len(ACTIONS)]
    t = np.linspace(0, 2 * np.pi, frames)[:, None, None]
    aa = 0.12 * np.sin(t + rng.uniform(0, 2 * np.pi, (1, 22, 3)))
    aa[:, joint, 0] += 0.9 * np.sin(2 * t[:, 0, 0] + index)
    aa[:, 0] = 0.0
    aa[:, 0, 1] = np.linspace(0, rng.uniform(-1, 1), frames)
    walk = 0.8 if "walk" in caption else 0.1
    trans = np.stack([np.zeros(frames), np.full(frames, 0.93), np.linspace(0, walk, frames)], axis=-1)
    return extract_features(forward_kinematics(axis_angle_to_matrix(aa), trans).astype(np.float32))


def fake_encoder(section: dict[str, Any] | None = None) -> FakeEncoder:
    """The embed_texts encoder of the fake workspace (use as ``motion.text.embeddings.make_encoder``)."""
    return FakeEncoder()


def patch_encoder(monkeypatch: Any) -> None:
    """Make unseen texts encodable with the fake encoder (pytest's monkeypatch)."""
    import motion.text.embeddings as embeddings

    monkeypatch.setattr(embeddings, "make_encoder", fake_encoder)


def write_dataset(root: Path, num_motions: int) -> tuple[list[str], list[str]]:
    """features/, poses/texts/, texts/ of ``num_motions`` motions; returns the motion ids and every text."""
    features, poses_texts, texts = root / "features", root / "poses" / "texts", root / "texts"
    for folder in (features / "new_joint_vecs", features / "splits", poses_texts, texts):
        folder.mkdir(parents=True, exist_ok=True)
    rows, ids, annotations, all_texts = [], [], {}, {"does nothing"}
    stacked = []
    for m in range(num_motions):
        mid = f"{m:06d}"
        caption, part, _ = ACTIONS[m % len(ACTIONS)]
        feats = plausible_motion(m, 41 + 4 * (m % 5))
        np.save(features / "new_joint_vecs" / f"{mid}.npy", feats)
        stacked.append(feats)
        captions = [f"a person {caption}", f"someone {caption}"]
        (poses_texts / f"{mid}.txt").write_text("".join(f"{c}#x/NOUN#0.0#0.0\n" for c in captions))
        for c, text in enumerate(captions):
            row = {"seg_id": f"{mid}_{c}", "motion_id": mid, "caption_index": c, "caption": text,
                   "start": 0.0, "end": 0.0, "backend": "fake"}
            annotation = {}
            for p in PART_NAMES:
                own = caption if p == part else "does nothing"
                row[f"{p}_action"] = caption.split()[0] if p == part else "idle"
                row[f"{p}_text"] = own
                annotation[p] = {"action": row[f"{p}_action"], "text": own}
                all_texts.add(own)
            annotations[f"{mid}_{c}"] = annotation
            all_texts.add(text)
            rows.append(row)
        ids.append(mid)
    pd.DataFrame(rows).to_parquet(texts / "part_texts.parquet", index=False)
    (texts / "body_part_annotations.json").write_text(json.dumps(annotations))
    cut = max(1, num_motions // 4)
    for split, split_ids in (("train", ids[:-cut]), ("val", ids[-cut:]), ("test", ids[-cut:]), ("all", ids)):
        (features / "splits" / f"{split}.txt").write_text("".join(i + "\n" for i in split_ids))
    data = np.concatenate(stacked)
    np.save(features / "Mean.npy", data.mean(0).astype(np.float32))
    np.save(features / "Std.npy", (data.std(0) + 1e-2).astype(np.float32))
    stats = {}
    for name in ENCODER_NAMES:
        dims = feature_dims(name)
        part = data if dims is None else data[:, dims]
        stats[f"{name}_mean"], stats[f"{name}_std"] = part.mean(0), part.std(0)
    np.savez(features / "part_stats.npz", **stats)
    return ids, sorted(all_texts)


def write_tmrs_and_embeddings(root: Path, texts: list[str]) -> None:
    """Seven small TMRs (token 8, latent 4) and the embed_texts folder holding ``texts``."""
    import torch

    from models.tmr import TMR, TMRConfig, save_tmr
    from motion.text.cache import ArrayCache
    from motion.text.embeddings import write_embeddings

    torch.manual_seed(0)
    for name in ENCODER_NAMES:
        dim = FEATURE_DIM if name == "whole_body" else PART_DIMS[name]
        cfg = TMRConfig(motion_dim=dim, token_dim=8, latent_dim=4, ff_size=8, num_layers=1, num_heads=2, dropout=0.0)
        save_tmr(TMR(cfg), root / "tmr" / name)
    encoder = FakeEncoder()
    cache = ArrayCache(root / "cache" / "embeddings")
    tokens, sentences = encoder.encode(texts)
    cache.add(texts, tokens, sentences)
    write_embeddings(root / "embeddings", texts, cache, encoder)


def train_tiny_lgtm(root: Path, ids: list[str], window: int, steps: int) -> None:
    """A tiny LGTM trained for ``steps`` steps on the fake motions (random text latents, 10% text dropout)."""
    from dataclasses import replace

    from models.lgtm_train import TrainConfig, train
    from tests.lgtm_helpers import TINY, make_dataset

    paths = {"features": root / "features", "texts": root / "poses" / "texts",
             "parts": root / "texts" / "body_part_annotations.json"}
    data = make_dataset(paths, ids, window)
    cfg = TrainConfig(batch_size=4, max_steps=steps, lr=3e-3, warmup_steps=2, val_every=steps,
                      checkpoint_every=steps, log_every=steps, seed=3, cond_drop_prob=0.1)
    train(replace(TINY, window=window), cfg, data, None, root / "lgtm", progress=False)


def make_studio_workspace(root: str | Path, num_motions: int = 12, window: int = 40, train_steps: int = 10,
                          evaluate_report: bool = True) -> Path:
    """Write the whole fake workspace under ``root``; return its params.yaml."""
    root = Path(root)
    ids, texts = write_dataset(root, num_motions)
    write_tmrs_and_embeddings(root, texts)
    train_tiny_lgtm(root, ids, window, train_steps)
    if evaluate_report:
        (root / "evaluate").mkdir(exist_ok=True)
        (root / "evaluate" / "report.md").write_text("# Evaluation\n\n| metric | value |\n|---|---|\n| FID | 1.0 |\n")
    params = {
        "seed": 1234,
        "paths": {name: str(root / name) for name in ("features", "texts", "embeddings", "tmr", "lgtm", "cache",
                                                      "evaluate", "prompt_study")}
        | {"poses": str(root / "poses"), "assets": str(root / "assets")},
        "split_texts": {"backend": "rules"},
        "embed_texts": {"encoder": "fake"},
        "lgtm": {"config": "cpu", "device": "cpu", "num_threads": 1, "text_latents": "random",
                 "configs": {"cpu": {"sampling": {"steps": 20}}}, "sampling": {"sampler": "dpmsolver++", "steps": 1000,
                                                                               "guidance_scale": 1.0}},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def shared_workspace(factory: Any) -> Path:
    """One fake workspace per test session (pytest's tmp_path_factory), built on first use."""
    root = Path(factory.getbasetemp()) / "studio_workspace"
    params = root / "params.yaml"
    if not params.is_file():
        make_studio_workspace(root)
    return params
