"""Stage train_lgtm: cache the 7 TMR text latents of every caption, then train every LGTM run.

A run is an entry of ``lgtm.runs``: the variant it names (``lgtm.variants``: the architecture, the ablation
switches and which texts fill the seven slots, the part texts or, without the partition, the caption seven
times) on ``lgtm.model``/``lgtm.train``, with the seed params ``seed`` + the run's ``seed``. The runs are
independent, so ``compute.processes.train_lgtm`` of them train side by side, one process each (2 on the 2-core
default: these small models are bound by per-operation overhead, so a second thread or a second DDP rank
barely helps while a second run doubles the throughput). A run's result depends only on its settings, data and
thread count, never on which process trains it or beside which other run.

Reads the features, poses/texts (captions), the part texts of split_texts, the token features of embed_texts and
the trained TMRs (``paths.tmr``/<name>). Writes into ``paths.lgtm``/<run>: text_latents.npz (all splits, for
evaluation too), model.safetensors (best validation weights), config.json, metrics.json, dvclive/ (curves + PNG
plots) and checkpoints/ (last + best). The folder persists between runs of the stage: a run resumes from its
last checkpoint when its settings and data are unchanged, so a finished run costs seconds when another run is
added or changed, and an interrupted one continues; folders of runs no longer in ``lgtm.runs`` are removed.
``${paths.metrics}/lgtm.json`` collects every run's final metrics.

``python -m stages.train_lgtm <run>`` trains one run (outside DVC, or under
``torchrun --nproc_per_node N -m stages.train_lgtm <run>`` on N GPUs; rank 0 builds the latent cache first).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path

import torch

from models.lgtm import LGTMConfig
from models.lgtm_train import TrainConfig, setup_distributed, train
from models.text_latents import TextLatentCache, build_text_latent_cache, text_latents
from motion.core.errors import DataError
from motion.core.io import sha256_file
from motion.core.process import side_by_side
from motion.core.seeding import seed_everything
from motion.core.settings import convert
from motion.data.captions import read_caption_table, read_part_annotations
from motion.data.clipstore import CAPTION_TABLE
from motion.datasets import (
    LGTMDataset,
    SpanRule,
    clip_captions,
    load_normalisation,
    read_segments,
    read_split,
    segment_texts,
)
from stages.entry import stage_main
from stages.settings import Settings

LATENTS_FILE = "text_latents.npz"


def slot_texts(segment, part_texts, texts: str) -> list[str]:
    """The 7 texts of a caption in TEXT_SLOTS order: caption + part texts (``parts``), or the caption seven
    times (``caption``: the variant without the partition, as its evaluation conditions it)."""
    if texts == "caption":
        return [segment.text] * 7
    return segment_texts(segment, part_texts)


def build_latents(settings: Settings, segments: list, text_dim: int, device: str, texts: str) -> TextLatentCache:
    """Encode the 7 texts of every caption once with the frozen TMR text encoders (or ``text_dim``-d random ones)."""
    paths = settings.paths
    part_texts = read_part_annotations(Path(paths.texts) / "body_part_annotations.json", "run `dvc repro split_texts`")
    provider = text_latents(settings.lgtm.text_latents, dim=text_dim, seed=settings.seed, tmr_root=paths.tmr,
                            embeddings=paths.embeddings, device=device)
    return build_text_latent_cache([s.seg_id for s in segments],
                                   [slot_texts(s, part_texts, texts) for s in segments], provider)


def variant_config(settings: Settings, run_name: str) -> tuple[LGTMConfig, int, str]:
    """The model config of run ``run_name`` (``lgtm.model`` + its variant's switches), its seed and slot texts."""
    lgtm = settings.lgtm
    run_spec = lgtm.runs[run_name]
    variant = lgtm.variants[run_spec.variant]
    switches = {"architecture": variant.architecture, "full_body_attention": variant.full_body_attention,
                "smoothnet": variant.smoothnet}
    return (convert(LGTMConfig, lgtm.model, **switches), settings.seed + run_spec.seed, variant.texts)


RESTARTED_FILES = ("model.safetensors", "config.json", "metrics.json", LATENTS_FILE)  # rewritten by every run


def run_all(settings: Settings) -> None:
    """Train every run of ``lgtm.runs`` (``compute.processes.train_lgtm`` at a time) and collect their metrics."""
    import json

    from motion.core.io import write_json

    root, runs = Path(settings.paths.lgtm), settings.lgtm.runs
    for stale in sorted(p for p in root.glob("*") if p.is_dir() and p.name not in runs):
        shutil.rmtree(stale)  # a run removed from lgtm.runs
        print(f"train_lgtm: removed {stale} (not in lgtm.runs)")
    order = sorted(runs, key=lambda name: (settings.lgtm.variants[runs[name].variant].architecture != "lgtm", name))
    processes = min(settings.compute.processes.train_lgtm, len(order))
    if processes == 1:
        for name in order:
            run(settings, name)
    else:
        print(f"train_lgtm: {len(order)} runs, {processes} side by side", flush=True)
        with side_by_side(processes) as pool:
            for future in [pool.submit(run, settings, name, False) for name in order]:
                future.result()
    metrics = {name: json.loads((root / name / "metrics.json").read_text(encoding="utf-8")) for name in sorted(runs)}
    write_json(Path(settings.paths.metrics) / "lgtm.json", metrics)


def run(settings: Settings, run_name: str, progress: bool = True) -> None:
    """Build the latent cache (rank 0), then train run ``run_name`` with the ``lgtm`` settings of the profile
    (``progress=False``: a line per checkpoint instead of a bar, for runs side by side)."""
    paths, lgtm = settings.paths, settings.lgtm
    model_cfg, seed, slot_fill = variant_config(settings, run_name)
    seed_everything(seed)
    if settings.compute.threads.train_lgtm:
        torch.set_num_threads(settings.compute.threads.train_lgtm)
    from motion.core.device import claim_gpu, resolve_device

    device = resolve_device(settings.compute.device)
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # under torchrun each rank takes its LOCAL_RANK GPU
        device = claim_gpu(device)
    rank, world, device = setup_distributed(device)
    train_cfg = convert(TrainConfig, lgtm.train, seed=seed)
    out = Path(paths.lgtm) / run_name
    features, texts = Path(paths.features), Path(paths.poses) / CAPTION_TABLE
    lo, hi = settings.captions.min_frames, settings.captions.max_frames
    rule = SpanRule("lgtm", lo, hi)
    captions = read_caption_table(texts)
    splits = {s: read_segments(features, clip_captions(captions, read_split(features, s), texts), rule)
              for s in ("train", "val", "test")}
    if rank == 0:
        for name in RESTARTED_FILES:  # as DVC removed them before: no file of an earlier run's settings survives
            (out / name).unlink(missing_ok=True)
        unique = {seg.seg_id: seg for segs in splits.values() for seg in segs}
        every = sorted(unique.values(), key=lambda s: s.seg_id)
        cache = build_latents(settings, every, model_cfg.text_dim, device, slot_fill)
        cache.save(out / LATENTS_FILE)
        print(f"train_lgtm: cached 7 text latents for {len(cache)} captions -> {out / LATENTS_FILE}")
    if world > 1:
        torch.distributed.barrier()
    cache = TextLatentCache.load(out / LATENTS_FILE)
    model_cfg = dataclasses.replace(model_cfg, text_dim=cache.dim)
    mean, std = load_normalisation(features)
    data = {s: LGTMDataset(splits[s], features, mean, std, cache, model_cfg.window, seed=train_cfg.seed)
            for s in ("train", "val")}
    if len(data["train"]) == 0:
        raise DataError(features / "splits" / "train.txt", f"no training caption spans {lo}..{hi - 1} frames",
                        "check the features stage output or captions.min_frames / max_frames")
    # a checkpoint resumes only onto the same text latents (another variant's texts would otherwise carry over)
    data_key = sha256_file(out / LATENTS_FILE)
    metrics = train(model_cfg, train_cfg, data["train"], data["val"], out, device=device, data_key=data_key,
                    progress=progress)
    if rank == 0:
        print(f"train_lgtm {run_name} ({lgtm.runs[run_name].variant}, seed {seed}): {metrics.get('step')} steps "
              f"({settings.profile} profile, "
              f"{metrics.get('trainable_parameters'):,} parameters), val loss {metrics.get('val_loss')} -> {out}")
    if world > 1:
        torch.distributed.destroy_process_group()



def main() -> None:
    """Train every run (no argument), or the one run named on the command line (under torchrun: every rank)."""
    if len(sys.argv) > 2:
        sys.exit("usage: python -m stages.train_lgtm [<run>]   (a key of lgtm.runs in params.yaml; none: all)")
    if len(sys.argv) == 1:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            sys.exit("train_lgtm: under torchrun name the run: torchrun ... -m stages.train_lgtm <run>")
        stage_main("train_lgtm", run_all)
        return
    name = sys.argv[1]

    def body(settings: Settings) -> None:
        if name not in settings.lgtm.runs:
            raise SystemExit(f"train_lgtm: no run {name!r} in lgtm.runs of params.yaml: use one of "
                             f"{', '.join(settings.lgtm.runs)}")
        run(settings, name)

    stage_main("train_lgtm", body)


if __name__ == "__main__":
    main()
