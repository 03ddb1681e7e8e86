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

import argparse
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from motion.core.config import load_params
from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json
from motion.core.parts import PART_NAMES
from motion.study.prompt_study import StudySettings, aggregate, dvc_metrics, load_pairs, run_study, tmr_similarity
from motion.study.report import write_study


def chosen_config(section: dict[str, Any]) -> dict[str, Any]:
    """The ``prompt_study.configs`` entry named by ``prompt_study.config``."""
    name = section.get("config", "cpu")
    configs = section.get("configs", {}) or {}
    if name not in configs:
        raise ValueError(f"params prompt_study.config {name!r} is not one of prompt_study.configs ({sorted(configs)})")
    return configs[name] or {}


def tmr_root(params: dict[str, Any]) -> Path:
    """Folder of the trained TMR models, ``paths.tmr``."""
    return Path(params["paths"]["tmr"])


def study_sampler(params: dict[str, Any], overrides: dict[str, Any], batch_size: int,
                  device: str) -> tuple[Any, int, dict[str, Any]]:
    """(prompts, parts, frames, seed) -> joint motions from the trained LGTM, its window, the sampling settings.

    Motions are sampled in batches of ``batch_size`` (batch b draws its noise from seed + b): on a CPU a batch
    of 40 costs little more than one motion.
    """
    import torch
    from tqdm import tqdm

    from models.diffusion import sample
    from models.lgtm_train import load_lgtm
    from motion.datasets import load_normalisation
    from tools.generate import features_to_joints, sampling_request, text_latents_for

    flags = argparse.Namespace(**{k: overrides.get(k) for k in ("sampler", "steps", "eta", "guidance_scale")},
                               seed=None)
    request = sampling_request(params, flags)
    mean, std = load_normalisation(params["paths"]["features"])
    model = load_lgtm(params["paths"]["lgtm"], device)
    latents = text_latents_for(params, model, device)

    def run(prompts: list[str], parts: list[dict[str, str]], frames: list[int], seed: int) -> list[np.ndarray]:
        cache: dict[tuple[str, ...], torch.Tensor] = {}
        cond = []
        for prompt, texts in zip(prompts, parts):
            key = (prompt, *(texts[p] for p in PART_NAMES))
            if key not in cache:
                cache[key] = torch.as_tensor(latents(list(key)), dtype=torch.float32)
            cond.append(cache[key])
        motions: list[np.ndarray] = []
        starts = range(0, len(prompts), batch_size)
        for b, start in enumerate(tqdm(starts, desc=f"{request.sampler} {request.steps} steps", unit="batch")):
            stop = start + batch_size
            lengths = torch.tensor(frames[start:stop], device=device)
            out = sample(model, torch.stack(cond[start:stop]).to(device), lengths, sampler=request.sampler,
                         steps=int(request.steps), eta=float(request.eta), guidance_scale=float(request.guidance_scale),
                         generator=torch.Generator().manual_seed(seed + b), progress=True)
            for i, n in enumerate(frames[start:stop]):
                motions.append(features_to_joints({p: out[p][i, :n].float().cpu().numpy() for p in PART_NAMES},
                                                  mean, std)[1])
        return motions

    return run, int(model.cfg.window), asdict(request)


def similarity_scorer(params: dict[str, Any], encoder: str, device: str) -> Any:
    """Text-motion similarity under the trained TMR ``encoder`` (whole_body by default)."""
    from models.tmr import load_tmr
    from motion.datasets import load_part_stats
    from tools.generate import TokenSource

    paths = params["paths"]
    if encoder != "whole_body":
        raise ValueError(f"prompt_study.tmr_encoder {encoder!r}: only whole_body scores a whole-body motion")
    model = load_tmr(tmr_root(params) / encoder, device)
    mean, std = load_part_stats(Path(paths["features"]) / "part_stats.npz", encoder)
    tokens = TokenSource(paths["embeddings"], params.get("embed_texts", {}) or {})
    return tmr_similarity(model, tokens, mean, std, device)


def run(params: dict[str, Any]) -> dict[str, Path]:
    """Sample, measure, compare and write every output; returns the main files."""
    import torch

    from motion.core.device import claim_gpu, resolve_device
    from tools.generate import resolve_part_texts

    section = params.get("prompt_study", {}) or {}
    config = chosen_config(section)
    lgtm = params.get("lgtm", {}) or {}
    torch.set_num_threads(int(lgtm.get("num_threads", 2)))
    device = claim_gpu(resolve_device(lgtm.get("device", "auto")))
    settings = StudySettings(samples=int(config.get("samples", 4)), seed=int(section.get("seed", 0)),
                             ci=section.get("ci", "bootstrap"), n_resamples=int(section.get("n_resamples", 10000)),
                             alpha=float(section.get("alpha", 0.05)))
    pairs_path = section.get("pairs", "prompts/ik_fk_pairs.yaml")
    pairs = load_pairs(pairs_path)
    split = section.get("split") or (params.get("split_texts", {}) or {}).get("backend", "rules")
    sampler, window, sampling = study_sampler(params, config.get("sampling", {}) or {},
                                              int(config.get("batch_size", 64)), device)
    used = [replace(p, frames=min(p.frames, window)) for p in pairs]
    encoder = section.get("tmr_encoder", "whole_body")
    similarity = similarity_scorer(params, encoder, device)
    study = run_study(used, sampler, lambda prompt: resolve_part_texts(prompt, {}, split, params), similarity,
                      settings)
    result = aggregate(study)
    meta = {"pairs_file": str(pairs_path), "splitter": split, "config": section.get("config", "cpu"),
            "lgtm": str(params["paths"]["lgtm"]), "model_window": window, "tmr_encoder": encoder,
            "device": device, "frames": {p.id: {"requested": p.frames, "used": u.frames} for p, u in zip(pairs, used)},
            "sampling": {k: v for k, v in sampling.items() if k != "seed"}}
    out_dir = Path(params["paths"]["prompt_study"])
    with atomic_dir(out_dir) as tmp:
        files = write_study(tmp, study, result, meta, int(section.get("video_sample", 0)),
                            float(section.get("embed_video_mb", 8.0)))
    metrics = Path(params["paths"]["metrics"]) / "prompt_study.json"
    write_json(metrics, {**dvc_metrics(result), "splitter": split, "sampling_steps": sampling["steps"]})
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
