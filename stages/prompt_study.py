"""Stage prompt_study: IK-like vs FK-like phrasings of the same end states, sampled from the trained LGTM.

Reads params ``prompt_study`` (design file, samples K and sampling overrides of the chosen config, the tests'
level and permutations, output folder), ``lgtm`` (the model's sampling defaults, device, text latents),
``split_texts`` (the splitter whose output the report shows beside the given part texts, unless
``prompt_study.split`` names one), ``embed_texts`` (the encoder for texts never embedded) and ``paths``. Inputs:
the LGTM and TMR models params ``models`` names (trained or released, ``models.inference.ModelFolders``: the TMR
text encoders give LGTM's text latents,
and the ``prompt_study.tmr_encoder`` one scores similarity to each constraint's goal description),
${paths.embeddings}, Mean/Std, part_stats.npz and splits/train.txt of ${paths.features}, the training captions
(${paths.poses}/texts, for the vocabulary check), the design YAML. With ``prompt_study.guidance.strength`` > 0 the
third arm samples each FK prompt with its constraint enforced (``models.inference.guided_study_sampler``), and
``guidance.sweep`` strengths are reported on ``guidance.sweep_samples`` samples per pair. Writes
${paths.prompt_study}/ whole (motion.study.report) and ${paths.metrics}/prompt_study.json (DVC metrics).
"""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json
from motion.core.sampling import SamplingConfig
from motion.core.settings import convert
from motion.data.captions import read_caption_table
from motion.data.clipstore import CAPTION_TABLE
from motion.study.prompt_study import (
    Design,
    StudySettings,
    aggregate,
    dvc_metrics,
    guidance_sweep,
    load_design,
    run_study,
)
from motion.study.report import write_study
from motion.study.vocabulary import vocabulary_overlap
from motion.text.split import SplitSettings
from stages.entry import stage_main
from stages.settings import Settings


def study_settings(settings: Settings) -> StudySettings:
    """Samples per prompt, noise seed and the tests' settings of params ``prompt_study``."""
    cfg = settings.prompt_study
    return StudySettings(samples=cfg.samples, seed=cfg.noise_seed, alpha=cfg.alpha, n_permutations=cfg.n_permutations)


def training_captions(poses: Path, features: Path) -> list[str]:
    """Every caption text of the training split (``splits/train.txt`` of the features, texts of the poses)."""
    split = features / "splits" / "train.txt"
    if not split.is_file():
        raise DataError(split, "training split is missing", "run `dvc repro features` first")
    ids = [line.strip() for line in split.read_text(encoding="utf-8").splitlines() if line.strip()]
    table = read_caption_table(poses / CAPTION_TABLE)
    return [c.text for i in ids for c in table.get(i, [])]


def clamp_frames(design: Design, window: int) -> Design:
    """The design with every clip length clamped to the model's window."""
    return replace(design, goals={k: replace(g, frames=min(g.frames, window)) for k, g in design.goals.items()})


def check_guided(design: Design, source: str | Path) -> None:
    """Parse every goal's guided constraint against its clip length before anything is sampled."""
    from models.guidance import check_frames, parse_constraints

    for name, goal in design.goals.items():
        try:
            check_frames(parse_constraints(goal.guided), goal.frames)
        except ValueError as err:
            raise DataError(source, f"constraint {name!r} guided: {err}", "fix its guided constraint") from None


def run(settings: Settings) -> dict[str, Path]:
    """Sample, measure, compare and write every output; returns the main files."""
    import torch

    from models.inference import (
        LGTMGenerator,
        ModelFolders,
        guided_study_sampler,
        resolve_part_texts,
        similarity_scorer,
        study_sampler,
    )
    from models.text_latents import TokenSource
    from motion.core.device import claim_gpu, resolve_device
    from motion.text.embeddings import encoder_settings, make_encoder

    paths, cfg = settings.paths, settings.prompt_study
    if settings.compute.threads.prompt_study:
        torch.set_num_threads(settings.compute.threads.prompt_study)
    device = claim_gpu(resolve_device(settings.compute.device))
    design = load_design(cfg.pairs)
    split = cfg.split or settings.split_texts.backend
    splitter = convert(SplitSettings, settings.split_texts)
    sampling = convert(SamplingConfig, cfg.sampling.over(settings.lgtm.sampling))
    tokens = TokenSource(paths.embeddings, lambda: make_encoder(encoder_settings(settings.embed_texts, device)))
    models = ModelFolders.of(settings.models, paths, settings.lgtm.text_latents, settings.seed)
    generator = LGTMGenerator.load(models.lgtm, device, cfg.batch_size, tokens=lambda: tokens)
    used = clamp_frames(design, generator.window)
    strength, iterations = cfg.guidance.strength, cfg.guidance.iterations
    guided = None
    if strength > 0:
        check_guided(used, cfg.pairs)
        guided = guided_study_sampler(generator, sampling, strength, iterations)
    similarity = similarity_scorer(models.tmr / cfg.tmr_encoder, models.part_stats, tokens, device)
    shown = None if split == "none" else (lambda prompt: resolve_part_texts(prompt, {}, split, splitter, paths.cache))
    study = run_study(used, study_sampler(generator, sampling), study_settings(settings), similarity,
                      guided=guided, splitter=shown)
    result = aggregate(study)
    sweep = guidance_sweep(used, {s: guided_study_sampler(generator, sampling, s, iterations)
                                  for s in cfg.guidance.sweep if s != strength},
                           study_settings(settings), cfg.guidance.sweep_samples) if guided else []
    vocabulary = vocabulary_overlap({"ik": [p.ik.text for p in design.pairs], "fk": [p.fk.text for p in design.pairs],
                                     "goal": [g.goal for g in design.goals.values()]},
                                    training_captions(Path(paths.poses), Path(paths.features)))
    meta = {"pairs_file": str(cfg.pairs), "splitter (shown only)": split, "config": settings.profile,
            "data": settings.download.source, "lgtm": str(models.lgtm.lgtm), "model_window": generator.window,
            "tmr_encoder": cfg.tmr_encoder, "device": device,
            "frames": {k: {"requested": g.frames, "used": used.goals[k].frames} for k, g in design.goals.items()},
            "sampling": asdict(sampling), "guidance_strength": strength, "guidance_iterations": iterations}
    out_dir = Path(paths.prompt_study)
    with atomic_dir(out_dir) as tmp:
        files = write_study(tmp, study, result, meta, vocabulary, cfg.video_sample, cfg.embed_video_mb, sweep=sweep)
    metrics = Path(paths.metrics) / "prompt_study.json"
    write_json(metrics, {**dvc_metrics(result), "sampling_steps": sampling.steps,
                         "vocabulary": {style: {"verbatim": s["verbatim"], **{f"overlap_{n}": round(v, 4)
                                                                               for n, v in s["overlap"].items()}}
                                        for style, s in vocabulary["styles"].items()}})
    return {"metrics": metrics, **{k: out_dir / v.relative_to(tmp) for k, v in files.items()}}


def study(settings: Settings) -> None:
    """Run the study and name its main files."""
    files = run(settings)
    print("prompt_study: " + ", ".join(f"{k} {v}" for k, v in files.items()))


def main() -> None:
    """Run the stage with params.yaml (or $LGTM_PARAMS)."""
    stage_main("prompt_study", study)

if __name__ == "__main__":
    main()
