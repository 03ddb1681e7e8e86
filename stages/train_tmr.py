"""Stages train_tmr@<name> and train_evaluator@<name>: train one TMR retrieval encoder (whole_body or a part).

``python -m stages.train_tmr <name>`` trains a conditioning TMR (LGTM's text latents) into ${paths.tmr}/<name>/;
``python -m stages.train_tmr <name> --evaluator`` the same encoder with the seed ``seed + tmr.evaluator.seed``
into ${paths.evaluator}/<name>/: the space the evaluation scores in, which no model is conditioned on.
Both read ``paths`` and ``tmr`` from params.yaml, the features
(new_joint_vecs, part_stats.npz, splits), ${paths.texts}/part_texts.parquet and ${paths.embeddings};
trains on the train split (validating on val each epoch) and writes ${paths.tmr}/<name>/
(model.safetensors, config.json, metrics.json, dvclive/) whole or not at all. The checkpoint and
the live DVCLive log sit in ${paths.cache}/tmr/<name>/ meanwhile, so an interrupted run resumes.
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import torch

from models.tmr import TMRConfig, save_tmr
from models.tmr_train import TrainConfig, copy_live, fit_tmr
from motion.core.device import exclusive_gpu, resolve_device
from motion.core.io import atomic_dir, write_json
from motion.core.parts import TEXT_SLOTS
from motion.core.settings import to_dict
from motion.datasets import feature_dims, load_text_motion, text_column
from stages.entry import stage_main
from stages.settings import Settings


def train_config(settings: Settings, device: str, seed: int) -> TrainConfig:
    """TMR's optimisation settings (params ``tmr.train``, ``tmr.one_per_motion``) with ``seed`` on ``device``."""
    train = settings.tmr.train
    return TrainConfig(epochs=train.epochs, batch_size=train.batch_size, lr=train.lr, weight_decay=train.weight_decay,
                       seed=seed, one_per_motion=settings.tmr.one_per_motion, num_workers=train.num_workers,
                       device=device, checkpoint_every=train.checkpoint_every, val_batch_size=train.val_batch_size)


def run(settings: Settings, name: str, evaluator: bool = False) -> None:
    """Train the encoder ``name`` (a TEXT_SLOTS entry) with the ``tmr`` settings: a conditioning TMR, or with
    ``evaluator`` one of the evaluation's own (its seed and folder)."""
    paths, tmr = settings.paths, settings.tmr
    if settings.compute.threads.train_tmr:
        torch.set_num_threads(settings.compute.threads.train_tmr)
    seed = settings.seed + tmr.evaluator.seed if evaluator else settings.seed
    train_cfg = train_config(settings, settings.compute.device, seed)
    crop_frames = tmr.train.crop_frames  # None: whole captions
    data = {"min_frames": settings.captions.min_frames, "max_frames": settings.captions.max_frames,
            "one_per_motion": tmr.one_per_motion}
    from motion.text.embeddings import TextEmbeddings

    embeddings = TextEmbeddings.load(paths.embeddings)
    common = dict(features_dir=paths.features, texts_dir=paths.texts, embeddings=embeddings, name=name,
                  min_frames=data["min_frames"], max_frames=data["max_frames"], seed=train_cfg.seed,
                  embeddings_dir=paths.embeddings, crop_frames=crop_frames)
    train_set = load_text_motion(split="train", filter_lengths=True, random_crop=True, **common)
    val_set = load_text_motion(split="val", filter_lengths=True, **common)
    model_cfg = TMRConfig(motion_dim=train_set.motion_dim, token_dim=embeddings.token_dim,
                          **to_dict(tmr.model), **to_dict(tmr.loss))
    work_dir = Path(paths.cache) / ("tmr_evaluator" if evaluator else "tmr") / name
    with exclusive_gpu(resolve_device(train_cfg.device)) as device:
        train_cfg = dataclasses.replace(train_cfg, device=device)
        model, history = fit_tmr(model_cfg, train_cfg, train_set, val_set, work_dir)
    out = Path(paths.evaluator if evaluator else paths.tmr) / name
    dims = feature_dims(name)
    extra = {
        "name": name,
        "role": "evaluator" if evaluator else "conditioner",
        "text": text_column(name),
        "feature_dims": None if dims is None else dims.tolist(),
        "stats": str(Path(paths.features) / "part_stats.npz"),
        "text_encoder": embeddings.meta,
        "train": {**dataclasses.asdict(train_cfg), "device": str(train_cfg.device)},
        "data": {"train_samples": len(train_set), "val_samples": len(val_set), **data, "crop_frames": crop_frames},
    }
    with atomic_dir(out) as tmp:
        save_tmr(model.cpu(), tmp, extra=extra)
        write_json(tmp / "metrics.json", {k: v for k, v in history[-1].items()})
        copy_live(work_dir, tmp)
    shutil.rmtree(work_dir)  # the checkpoint is no longer needed once the outputs are in place
    last = history[-1]
    stage = "train_evaluator" if evaluator else "train_tmr"
    print(f"{stage} {name}: {last['epoch']} epochs, train loss {last['train/loss']:.4f}, val loss "
          f"{last['val/loss']:.4f}, val t2m R@1 {last.get('val/all/t2m_R1', float('nan')):.1f}% -> {out}")



def main() -> None:
    """Train the encoder named on the command line (``--evaluator``: the evaluation's own)."""
    args = sys.argv[1:]
    evaluator = "--evaluator" in args
    names = [a for a in args if a != "--evaluator"]
    if len(names) != 1 or names[0] not in TEXT_SLOTS or len(args) > 2:
        sys.exit(f"usage: python -m stages.train_tmr <{'|'.join(TEXT_SLOTS)}> [--evaluator]")
    name = names[0]
    stage = f"train_evaluator@{name}" if evaluator else f"train_tmr@{name}"
    stage_main(stage, lambda settings: run(settings, name, evaluator))

if __name__ == "__main__":
    main()
