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
from typing import Any

from motion.core.config import load_params
from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json
from motion.core.sampling import SamplingConfig
from motion.study.prompt_study import StudySettings, aggregate, dvc_metrics, load_pairs, run_study
from motion.study.report import write_study


def chosen_config(section: dict[str, Any]) -> dict[str, Any]:
    """The ``prompt_study.configs`` entry named by ``prompt_study.config``."""
    name = section.get("config", "cpu")
    configs = section.get("configs", {}) or {}
    if name not in configs:
        raise ValueError(f"params prompt_study.config {name!r} is not one of prompt_study.configs ({sorted(configs)})")
    return configs[name] or {}


def study_settings(section: dict[str, Any], config: dict[str, Any]) -> StudySettings:
    """Samples per prompt (of the chosen config), seed and the comparison method of params ``prompt_study``."""
    return StudySettings(samples=int(config.get("samples", 4)), seed=int(section.get("seed", 0)),
                         ci=section.get("ci", "bootstrap"), n_resamples=int(section.get("n_resamples", 10000)),
                         alpha=float(section.get("alpha", 0.05)))


def run(params: dict[str, Any]) -> dict[str, Path]:
    """Sample, measure, compare and write every output; returns the main files."""
    import torch

    from models.inference import LGTMGenerator, TrainedLGTM, resolve_part_texts, similarity_scorer, study_sampler
    from models.lgtm_train import resolve_settings
    from models.text_latents import TokenSource
    from motion.core.device import claim_gpu, resolve_device
    from motion.text.embeddings import EncoderSettings, make_encoder

    paths, section = params["paths"], params.get("prompt_study", {}) or {}
    config = chosen_config(section)
    lgtm = params.get("lgtm", {}) or {}
    torch.set_num_threads(int(lgtm.get("num_threads", 2)))
    device = claim_gpu(resolve_device(lgtm.get("device", "auto")))
    settings = study_settings(section, config)
    pairs_path = section.get("pairs", "prompts/ik_fk_pairs.yaml")
    pairs = load_pairs(pairs_path)
    split = section.get("split") or (params.get("split_texts", {}) or {}).get("backend", "rules")
    sampling = SamplingConfig.from_dict({**asdict(resolve_settings(lgtm)[2]), **(config.get("sampling", {}) or {})})
    tokens = TokenSource(paths["embeddings"], lambda: make_encoder(EncoderSettings.from_params(params["embed_texts"])))
    trained = TrainedLGTM.at(paths, lgtm.get("text_latents", "tmr"), int(params.get("seed", 0)))
    generator = LGTMGenerator.load(trained, device, int(config.get("batch_size", 64)), tokens=lambda: tokens)
    used = [replace(p, frames=min(p.frames, generator.window)) for p in pairs]
    encoder = section.get("tmr_encoder", "whole_body")
    similarity = similarity_scorer(Path(paths["tmr"]) / encoder, Path(paths["features"]) / "part_stats.npz", tokens,
                                   device)
    study = run_study(used, study_sampler(generator, sampling),
                      lambda prompt: resolve_part_texts(prompt, {}, split, params.get("split_texts", {}) or {},
                                                        paths.get("cache", "data/cache")), similarity, settings)
    result = aggregate(study)
    meta = {"pairs_file": str(pairs_path), "splitter": split, "config": section.get("config", "cpu"),
            "lgtm": str(paths["lgtm"]), "model_window": generator.window, "tmr_encoder": encoder,
            "device": device, "frames": {p.id: {"requested": p.frames, "used": u.frames} for p, u in zip(pairs, used)},
            "sampling": asdict(sampling)}
    out_dir = Path(paths["prompt_study"])
    with atomic_dir(out_dir) as tmp:
        files = write_study(tmp, study, result, meta, int(section.get("video_sample", 0)),
                            float(section.get("embed_video_mb", 8.0)))
    metrics = Path(paths["metrics"]) / "prompt_study.json"
    write_json(metrics, {**dvc_metrics(result), "splitter": split, "sampling_steps": sampling.steps})
    return {"metrics": metrics, **{k: out_dir / v.relative_to(tmp) for k, v in files.items()}}


def main() -> None:
    """Run the stage with params.yaml (or $LGTM_PARAMS)."""
    try:
        files = run(load_params())
    except (DataError, ValueError) as err:
        sys.exit(f"prompt_study: {err}")
    print("prompt_study: " + ", ".join(f"{k} {v}" for k, v in files.items()))


if __name__ == "__main__":
    main()
