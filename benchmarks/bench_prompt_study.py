"""Wall time of the prompt_study stage with params.yaml's settings, on untrained models of the configured sizes.

    python -m benchmarks.bench_prompt_study [--threads N] [--profile cpu] [--keep outputs/bench_prompt_study]

Builds, in a temporary folder, an LGTM of ``lgtm.model`` (random weights, random text latents), a whole-body
TMR of ``tmr.model`` (384-d word tokens, like MiniLM) and the feature statistics (``paths.features`` when
present, else a flat standing pose), then runs the stage on ``prompts/ik_fk_pairs.yaml`` (the vocabulary check
reads ``paths.poses`` captions when present) with the profile's ``prompt_study`` settings (samples, sampling
steps) and prints the time of the whole stage and of its parts. Untrained weights cost the same compute as trained ones.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from motion.data.captions import Caption, write_caption_table
from motion.data.clipstore import CAPTION_TABLE

if TYPE_CHECKING:
    from stages.settings import Settings


class WordTokens:
    """A stand-in for the embed_texts encoder: one seeded 384-d token per word."""

    name, cache_id, token_dim, sentence_dim = "bench", "bench:words", 384, 384

    def encode(self, texts: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
        """Token features per word and their normalised mean."""
        tokens = [np.stack([np.random.default_rng(zlib.crc32(w.encode())).standard_normal(384) for w in t.split()])
                  .astype(np.float32) for t in texts]
        return tokens, np.stack([t.mean(0) / np.linalg.norm(t.mean(0)) for t in tokens])


def build(root: Path, settings: Settings) -> Settings:
    """Untrained models and statistics under ``root``; returns the settings to run the stage with."""
    import torch

    from models.checkpoint import save_model
    from models.lgtm import LGTM, LGTMConfig
    from models.tmr import TMR, TMRConfig, save_tmr
    from motion.core.io import write_json
    from motion.core.settings import to_dict
    from motion.text.cache import ArrayCache
    from motion.text.embeddings import write_embeddings

    torch.manual_seed(0)
    cfg = LGTMConfig.from_dict(to_dict(settings.lgtm.model))
    save_model(LGTM(cfg).eval(), root / "lgtm" / "lgtm" / "model.safetensors")  # paths.lgtm / run lgtm
    write_json(root / "lgtm" / "lgtm" / "config.json", {"model": cfg.to_dict()})
    tmr_model = to_dict(settings.tmr.model)
    save_tmr(TMR(TMRConfig(motion_dim=263, token_dim=384, **tmr_model)), root / "tmr" / "whole_body")
    features = Path(settings.paths.features)
    stats = root / "features"
    stats.mkdir()
    if (features / "Mean.npy").is_file() and (features / "part_stats.npz").is_file():
        for name in ("Mean.npy", "Std.npy", "part_stats.npz"):
            (stats / name).write_bytes((features / name).read_bytes())
    else:
        from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
        from motion.data.features import extract_features

        rest = forward_kinematics(axis_angle_to_matrix(np.zeros((22, 3))), np.zeros(3))
        mean = extract_features(np.repeat((rest - [0, rest[:, 1].min(), 0])[None], 30, axis=0)).mean(axis=0)
        np.save(stats / "Mean.npy", mean)
        np.save(stats / "Std.npy", np.full(263, 0.05))
        np.savez(stats / "part_stats.npz", whole_body_mean=mean, whole_body_std=np.ones(263))
    from motion.study.prompt_study import load_design

    design = load_design(settings.prompt_study.pairs)
    given = [p.ik for p in design.pairs] + [p.fk for p in design.pairs]
    prompts = sorted({t for prompt in given for t in (prompt.text, *prompt.parts.values())}
                     | {g.goal for g in design.goals.values()})
    (stats / "splits").mkdir()
    train = features / "splits" / "train.txt"
    (stats / "splits" / "train.txt").write_text(train.read_text() if train.is_file() else "000000\n")
    poses = Path(settings.paths.poses)
    if not (poses / CAPTION_TABLE).is_file():  # no data yet: one caption stands in for the vocabulary check
        poses = root / "poses"
        write_caption_table(poses / CAPTION_TABLE, {"000000": [Caption("a man waves.", "a/DET man/NOUN wave/VERB")]})
    cache = ArrayCache(root / "cache")
    cache.add(prompts, *WordTokens().encode(prompts))
    write_embeddings(root / "embeddings", prompts, cache, WordTokens())
    paths = dataclasses.replace(settings.paths, lgtm=str(root / "lgtm"), tmr=str(root / "tmr"),
                                prompt_study=str(root / "out"), features=str(stats),
                                embeddings=str(root / "embeddings"), metrics=str(root / "metrics"),
                                cache=str(root / "cache"), poses=str(poses))
    models = dataclasses.replace(settings.models, lgtm=str(Path(paths.lgtm) / "lgtm"), runs=paths.lgtm, tmr=paths.tmr,
                                 evaluator=paths.evaluator)  # the trained models are paths.*
    return dataclasses.replace(settings, paths=paths, models=models,
                               lgtm=dataclasses.replace(settings.lgtm, text_latents="random"),
                               compute=dataclasses.replace(settings.compute, device="cpu"))


def main() -> None:
    """Build the models, run the stage once and print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: params compute.threads.prompt_study)")
    parser.add_argument("--profile", default=None, help="settings profile (default: params.yaml's profile)")
    parser.add_argument("--keep", default=None, help="copy the stage outputs (report, videos) to this folder")
    args = parser.parse_args()
    from benchmarks import settings_for

    settings = settings_for(args.profile)
    if args.threads is not None:
        settings = dataclasses.replace(settings, compute=dataclasses.replace(
            settings.compute, threads=dataclasses.replace(settings.compute.threads, prompt_study=args.threads)))
    import motion.study.report as report
    import motion.text.embeddings as embeddings
    from stages import prompt_study

    embeddings.make_encoder = lambda section: WordTokens()  # every prompt is stored; never called
    timings: dict[str, float] = {"write_study": 0.0}
    original = report.write_study

    def timed_write(*a, **k):  # noqa: ANN002, ANN003, ANN202
        t = time.perf_counter()
        out = original(*a, **k)
        timings["write_study"] += time.perf_counter() - t
        return out

    prompt_study.write_study = timed_write
    with tempfile.TemporaryDirectory() as tmp:
        run_settings = build(Path(tmp), settings)
        t = time.perf_counter()
        prompt_study.run(run_settings)
        total = time.perf_counter() - t
        if args.keep:
            import shutil

            shutil.copytree(Path(tmp) / "out", args.keep, dirs_exist_ok=True)
    study = settings.prompt_study
    sampling = study.sampling.over(settings.lgtm.sampling)
    print(f"prompt_study ({settings.profile}: {study.samples} samples/prompt, {sampling.sampler} {sampling.steps} "
          f"steps), {settings.compute.threads.prompt_study or 'default'} thread(s): total {total:.1f} s, "
          f"of which plots+videos+reports {timings['write_study']:.1f} s, "
          f"sampling+measuring {total - timings['write_study']:.1f} s")


if __name__ == "__main__":
    main()
