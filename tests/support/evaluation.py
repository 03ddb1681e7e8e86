"""A tiny written test split (features, captions, part texts), tiny random TMRs as the evaluator and a
generator that replays the real motions with seeded noise: the fixtures of the evaluation tests."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from motion.core.parts import FEATURE_DIM, PART_DIMS, PART_NAMES, TEXT_SLOTS
from motion.core.sampling import SamplingConfig
from motion.data.clipstore import CAPTION_TABLE
from motion.eval.evaluation import TMREvaluator, read_test_captions, real_motions
from tests.support.params import settings_of, with_overrides
from tests.support.stores import write_caption_files, write_feature_store

ACTIONS = ("waves the right hand", "kicks with the left leg", "nods the head", "bends the torso")
ACTION_PART = ("right_arm", "left_leg", "head", "torso")
WINDOW = 48


def write_dataset(root: Path, num_motions: int = 40, seed: int = 0) -> dict:
    """Features, captions and part texts of ``num_motions`` test clips (one caption each); returns params."""
    rng = np.random.default_rng(seed)
    features, texts = root / "features", root / "texts"
    for d in (features / "splits", texts):
        d.mkdir(parents=True)
    ids, parts, all_feats, clips, captions = [], {}, [], {}, {}
    for m in range(num_motions):
        mid = f"{m:06d}"
        action = m % len(ACTIONS)
        frames = 50 + (m % 3) * 10
        t = np.arange(frames)[:, None]
        pattern = np.random.default_rng(100 + action).normal(size=FEATURE_DIM)
        feats = (np.sin(0.2 * (action + 1) * t) * pattern + 0.1 * rng.normal(size=(frames, FEATURE_DIM)))
        clips[mid] = feats.astype(np.float32)
        all_feats.append(feats)
        caption = f"a person {ACTIONS[action]} take {m}"
        captions[mid] = f"{caption}#a/DET person/NOUN#0.0#0.0\n"
        parts[f"{mid}_0"] = {p: {"action": "x", "text": ACTIONS[action]} if p == ACTION_PART[action] else
                             {"action": "idle", "text": "does nothing"} for p in PART_NAMES}
        ids.append(mid)
    write_feature_store(features, clips)
    write_caption_files(root / "poses", captions)
    (features / "splits" / "test.txt").write_text("\n".join(ids) + "\n")
    stacked = np.concatenate(all_feats)
    np.save(features / "Mean.npy", stacked.mean(0).astype(np.float32))
    np.save(features / "Std.npy", (stacked.std(0) + 0.1).astype(np.float32))
    stats = {"whole_body_mean": stacked.mean(0), "whole_body_std": stacked.std(0)}
    from motion.core.parts import PART_INDICES
    for p in PART_NAMES:
        part = stacked[:, PART_INDICES[p]]
        stats[f"{p}_mean"], stats[f"{p}_std"] = part.mean(0), part.std(0)
    np.savez(features / "part_stats.npz", **stats)
    (texts / "body_part_annotations.json").write_text(json.dumps(parts))
    return with_overrides({
        "seed": 3,
        **{f"paths.{k}": str(v) for k, v in {
            "features": features, "poses": root / "poses", "texts": texts, "embeddings": root / "embeddings",
            "cache": root / "cache", "metrics": root / "metrics", "lgtm": root / "lgtm", "tmr": root / "tmr",
            "evaluator": root / "evaluator", "evaluate": root / "evaluate"}.items()},
        "captions.min_frames": 40, "captions.max_frames": 200, "lgtm.text_latents": "random",
        "profile": "cpu", "compute.device": "cpu", "compute.threads.evaluate": 1,
        "lgtm.runs": {"lgtm": {"variant": "lgtm", "seed": 0}, "lgtm_seed1": {"variant": "lgtm", "seed": 1},
                      "no_partition": {"variant": "no_partition", "seed": 0}},
        "evaluate.batch_size": 16, "evaluate.compare": [["real", "lgtm"]],
        **{f"evaluate.{k}": v for k, v in {
            "protocol": "lgtm", "variants": ["lgtm", "no_partition"], "sampling": {"sampler": "ddim", "steps": 3},
            "max_captions": 32, "replications": 3, "generation_seeds": 2, "diversity_times": 300,
            "mm_texts": 3, "mm_repeats": 4, "mm_times": 2,
            "rows": [{"name": "caption_only", "conditioning": "whole_body", "sampler": "ddim", "steps": 3},
                     {"name": "cfg", "sampler": "ddim", "steps": 3, "guidance_scale": 2.0}],
            "curve": {"items": 12, "replications": 2, "reference": "ddim_4",
                      "points": [{"name": "ddim_4", "sampler": "ddim", "steps": 4},
                                 {"name": "dpm_2", "sampler": "dpmsolver++", "steps": 2}]}}.items()},
    })


def written_captions(params: dict, min_frames: int = 40, max_captions: int = 0, seed: int = 0) -> list:
    """The test captions of a written dataset (spans of 40..199 frames unless told), cropped to WINDOW."""
    p = params["paths"]
    return read_test_captions(p["features"], Path(p["poses"]) / CAPTION_TABLE,
                              Path(p["texts"]) / "body_part_annotations.json", WINDOW, min_frames, 200, max_captions,
                              seed)


class FakeTokens:
    """One seeded 8-d vector per word."""

    def __call__(self, text: str) -> np.ndarray:
        return np.stack([np.random.default_rng(sum(map(ord, w))).standard_normal(8)
                         for w in text.split()]).astype(np.float32)


def tiny_tmrs(latent_dim: int = 6, seed: int = 0) -> dict:
    """Seven randomly initialised small TMRs."""
    import torch

    from models.tmr import TMR, TMRConfig

    torch.manual_seed(seed)
    out = {}
    for name in TEXT_SLOTS:
        dim = FEATURE_DIM if name == "whole_body" else PART_DIMS[name]
        cfg = TMRConfig(motion_dim=dim, token_dim=8, latent_dim=latent_dim, ff_size=8, num_layers=1, num_heads=2,
                        dropout=0.0)
        out[name] = TMR(cfg).eval()
    return out


def fake_evaluator(params: dict, seed: int = 0) -> TMREvaluator:
    """TMREvaluator on tiny random TMRs (initialised from ``seed``), fake token features and the test part_stats."""
    from motion.datasets import load_part_stats

    stats_path = Path(params["paths"]["features"]) / "part_stats.npz"
    return TMREvaluator(tiny_tmrs(seed=seed), FakeTokens(), {n: load_part_stats(stats_path, n) for n in TEXT_SLOTS})


def fake_spaces(params: dict) -> dict:
    """The stage's two TMR spaces on tiny random TMRs: the evaluator's (seed 1) and the conditioners' (seed 0)."""
    return {"evaluator": fake_evaluator(params, seed=1), "tmr": fake_evaluator(params)}


def replay_runs(params: dict, noise: float = 0.3) -> dict:
    """A replay generator per training run of the written dataset's params (each run its own noise)."""
    return {run: ReplayGenerator(params, noise, salt=k) for k, run in enumerate(params["lgtm"]["runs"])}


class ReplayGenerator:
    """Returns each caption's real motion (plus seeded noise unless exact); records every call."""

    def __init__(self, params: dict, noise: float = 0.3, supports_guidance: bool = False, salt: int = 0) -> None:
        self.fingerprint = f"replay{salt}" if salt else "replay"
        self.salt = salt
        self.captions = {c.caption: c for c in written_captions(params)}
        self.features = params["paths"]["features"]
        self.noise = noise
        self.supports_guidance = supports_guidance
        self.calls: list[tuple[list, SamplingConfig, int]] = []

    def generate(self, texts: Sequence[tuple[str, ...]], lengths: Sequence[int], setting: SamplingConfig,
                 seed: int) -> list[np.ndarray]:
        self.calls.append((list(texts), setting, seed))
        rng = np.random.default_rng([seed, self.salt])
        real = real_motions(self.features, [self.captions[t[0]] for t in texts])
        return [(m[:n] + self.noise * rng.standard_normal(m[:n].shape)).astype(np.float32)
                for m, n in zip(real, lengths)]


def evaluate_settings(params: dict):  # noqa: ANN201
    """The evaluate stage's view of a written dataset's params (what ``load_settings("evaluate")`` gives)."""
    return settings_of(params, "evaluate")
