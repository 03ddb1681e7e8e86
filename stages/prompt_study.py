"""Stage prompt_study: IK-like vs FK-like phrasings of five spatial goals, sampled from the trained LGTM.

Reads params ``prompt_study`` (pairs file, samples K and sampling overrides of the chosen config, CI method,
output folder), ``lgtm`` (the model's sampling defaults, device, text latents), ``split_texts`` (the part
splitter, unless ``prompt_study.split`` names one), ``embed_texts`` (the encoder for prompts never embedded) and
``paths``. Inputs: the LGTM model (``paths.lgtm``), the TMR models (``paths.tmr``:
their text encoders give LGTM's text latents, and the ``prompt_study.tmr_encoder`` one scores
text-motion similarity), ${paths.embeddings}, Mean/Std and part_stats.npz of ${paths.features}, the pairs YAML.
Writes ${paths.prompt_study}/ whole (motion.study.report) and ${paths.metrics}/prompt_study.json (DVC metrics).
"""
from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path

from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json
from motion.core.sampling import SamplingConfig
from motion.core.settings import convert
from motion.study.prompt_study import StudySettings, aggregate, dvc_metrics, load_pairs, run_study
from motion.study.report import write_study
from motion.text.split import SplitSettings
from stages.settings import Settings, load_settings


def study_settings(settings: Settings) -> StudySettings:
    """Samples per prompt, noise seed and the comparison method of params ``prompt_study``."""
    cfg = settings.prompt_study
    return StudySettings(samples=cfg.samples, seed=cfg.noise_seed, ci=cfg.ci, n_resamples=cfg.n_resamples,
                         alpha=cfg.alpha)


def run(settings: Settings) -> dict[str, Path]:
    """Sample, measure, compare and write every output; returns the main files."""
    import torch

    from models.inference import LGTMGenerator, ModelFolders, resolve_part_texts, similarity_scorer, study_sampler
    from models.text_latents import TokenSource
    from motion.core.device import claim_gpu, resolve_device
    from motion.text.embeddings import encoder_settings, make_encoder

    paths, cfg = settings.paths, settings.prompt_study
    if settings.compute.threads.prompt_study:
        torch.set_num_threads(settings.compute.threads.prompt_study)
    device = claim_gpu(resolve_device(settings.compute.device))
    pairs = load_pairs(cfg.pairs)
    split = cfg.split or settings.split_texts.backend
    splitter = convert(SplitSettings, settings.split_texts)
    sampling = convert(SamplingConfig, cfg.sampling.over(settings.lgtm.sampling))
    tokens = TokenSource(paths.embeddings, lambda: make_encoder(encoder_settings(settings.embed_texts, device)))
    models = ModelFolders.of(settings.models, paths, settings.lgtm.text_latents, settings.seed)
    generator = LGTMGenerator.load(models.lgtm, device, cfg.batch_size, tokens=lambda: tokens)
    used = [replace(p, frames=min(p.frames, generator.window)) for p in pairs]
    similarity = similarity_scorer(models.tmr / cfg.tmr_encoder, models.part_stats, tokens, device)
    study = run_study(used, study_sampler(generator, sampling),
                      lambda prompt: resolve_part_texts(prompt, {}, split, splitter, paths.cache),
                      similarity, study_settings(settings))
    result = aggregate(study)
    meta = {"pairs_file": str(cfg.pairs), "splitter": split, "config": settings.profile,
            "lgtm": str(models.lgtm.lgtm), "model_window": generator.window, "tmr_encoder": cfg.tmr_encoder,
            "device": device, "frames": {p.id: {"requested": p.frames, "used": u.frames} for p, u in zip(pairs, used)},
            "sampling": asdict(sampling)}
    out_dir = Path(paths.prompt_study)
    with atomic_dir(out_dir) as tmp:
        files = write_study(tmp, study, result, meta, cfg.video_sample, cfg.embed_video_mb)
    metrics = Path(paths.metrics) / "prompt_study.json"
    write_json(metrics, {**dvc_metrics(result), "splitter": split, "sampling_steps": sampling.steps})
    return {"metrics": metrics, **{k: out_dir / v.relative_to(tmp) for k, v in files.items()}}


def main() -> None:
    """Run the stage with params.yaml (or $LGTM_PARAMS)."""
    try:
        files = run(load_settings("prompt_study"))
    except (DataError, ValueError) as err:
        sys.exit(f"prompt_study: {err}")
    print("prompt_study: " + ", ".join(f"{k} {v}" for k, v in files.items()))


if __name__ == "__main__":
    main()
