"""Does LGTM move the part a single-part prompt names? Share of motion energy per body part.

For each single-part prompt ("waves the right hand", "kicks with the left leg", "nods") it samples K
motions from the trained LGTM (models.lgtm, sampler of lgtm.sampling) and measures, per part, the share of
the motion's energy in the part's joints: ``motion.eval.evaluation.part_energy_shares``, the measure behind the
evaluation's ``named_part_energy`` (mean squared speed of the root-relative ric joints, summed per part). The
share of the named part is compared with the same measure on the real synthetic motions that perform that
action alone (originals and mirrors).

Run after `dvc repro train_lgtm`:  python -m benchmarks.part_energy [--samples 8]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from motion.core.parts import PART_NAMES
from motion.data.clipstore import FEATURE_VECS, ClipStore, open_features
from motion.eval.evaluation import part_energy_shares

# prompt -> (named part, synthetic action of that part, action of the mirrored side)
PROMPTS: dict[str, tuple[str, str, str]] = {
    "a person waves the right hand": ("right_arm", "wave_right", "wave_left"),
    "a person kicks with the left leg": ("left_leg", "kick_left", "kick_right"),
    "a person nods": ("head", "nod", "nod"),
}
MIRROR_PART = {"left_arm": "right_arm", "right_arm": "left_arm", "left_leg": "right_leg", "right_leg": "left_leg"}


def real_motions(labels_path: Path, features: ClipStore, part: str, action: str,
                 mirrored_action: str) -> list[np.ndarray]:
    """Features (T, 263) of the synthetic motions doing only ``action`` with ``part`` (and mirrors doing it)."""
    labels = json.loads(labels_path.read_text())
    out = []
    for motion_id, label in sorted(labels.items()):
        moving = {p: a for p, a in label["parts"].items() if a != "idle"}
        if moving == {part: action}:
            out.append(np.asarray(features.load(motion_id, FEATURE_VECS)))
        if moving == {MIRROR_PART.get(part, part): mirrored_action} and f"M{motion_id}" in features:
            out.append(np.asarray(features.load(f"M{motion_id}", FEATURE_VECS)))
    return out


def main() -> None:
    """Print a table of the named part's energy share, generated vs real."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8, help="generated motions per prompt")
    args = parser.parse_args()
    import torch

    from models.inference import LGTMGenerator, TrainedLGTM, features_to_joints, part_sampler, resolve_part_texts
    from models.text_latents import TokenSource
    from motion.core.sampling import SamplingConfig
    from motion.core.settings import convert, to_dict
    from motion.text.embeddings import encoder_settings, make_encoder
    from motion.text.split import SplitSettings
    from stages.settings import load_settings

    settings = load_settings()
    paths = settings.paths
    if settings.compute.threads.prompt_study:  # sampling as tools.generate and the prompt study do
        torch.set_num_threads(settings.compute.threads.prompt_study)
    sampling = convert(SamplingConfig, settings.lgtm.sampling)
    split, splitter = settings.split_texts.backend, convert(SplitSettings, settings.split_texts)
    trained = TrainedLGTM.at({**to_dict(paths), "lgtm": settings.pipeline_lgtm()}, settings.lgtm.text_latents,
                             settings.seed)
    tokens = TokenSource(paths.embeddings, lambda: make_encoder(encoder_settings(settings.embed_texts, "cpu")))
    generator = LGTMGenerator.load(trained, "cpu", batch_size=1, tokens=lambda: tokens)
    mean, std, window = generator.mean, generator.std, generator.window
    print(f"| prompt | part | generated share (K={args.samples}) | real share (n) | generated parts (mean share) |")
    print("|---|---|---|---|---|")
    for prompt, (part, action, mirrored) in PROMPTS.items():
        texts = resolve_part_texts(prompt, {}, split, splitter, paths.cache)
        shares = []
        for seed in range(args.samples):
            parts = part_sampler(generator, sampling, seed)(prompt, texts, window)
            features, _ = features_to_joints(parts, mean, std)
            shares.append(part_energy_shares(features))
        labels = Path(paths.annotations) / "synthetic_labels.json"
        real = [part_energy_shares(f) for f in real_motions(labels, open_features(paths.features), part, action,
                                                            mirrored)]
        k = PART_NAMES.index(part)
        gen = np.array([s[k] for s in shares])
        ref = np.array([s[k] for s in real])
        spread = ", ".join(f"{p} {np.mean([s[i] for s in shares]):.2f}" for i, p in enumerate(PART_NAMES))
        print(f"| {prompt} | {part} | {gen.mean():.2f} ± {gen.std():.2f} | "
              f"{ref.mean():.2f} ± {ref.std():.2f} ({len(ref)}) | {spread} |")


if __name__ == "__main__":
    main()
