"""Stage train_tmr@<name>: train one TMR retrieval encoder (whole_body or a part) in its two roles.

``python -m stages.train_tmr <name>`` trains, from the same data and trainer:
- the conditioning TMR (LGTM's text latents) with params ``seed`` into ${paths.tmr}/<name>/;
- the evaluator TMR with the seed ``seed + tmr.evaluator.seed`` into ${paths.evaluator}/<name>/: the space the
  evaluation scores in, which no model is conditioned on.
The two are independent runs: with ``compute.processes.train_tmr: 2`` they train side by side in two processes
(one per core on the 2-core default; a process's result depends only on its seed and thread count, so the bytes
are those of a sequential run). Both read ``paths`` and ``tmr`` from params.yaml, the features
(new_joint_vecs.npy, index.parquet, part_stats.npz, splits), ${paths.texts}/part_texts.parquet and ${paths.embeddings};
each trains on the train split (validating on val each epoch) and writes its folder
(model.safetensors, config.json, metrics.json, dvclive/) whole or not at all. The checkpoint and
the live DVCLive log sit in ${paths.cache}/tmr[_evaluator]/<name>/ meanwhile, so an interrupted run resumes.
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from models.tmr import TMRConfig, save_tmr
from models.tmr_train import TrainConfig, copy_live, fit_tmr
from motion.core.device import exclusive_gpu, resolve_device
from motion.core.io import atomic_dir, write_json
from motion.core.parts import TEXT_SLOTS
from motion.core.process import side_by_side
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


ROLES = ("conditioner", "evaluator")


def run(settings: Settings, name: str) -> None:
    """Train the encoder ``name`` (a TEXT_SLOTS entry) as a conditioner and as an evaluator, in
    ``compute.processes.train_tmr`` processes (1: one after the other, here)."""
    processes = min(settings.compute.processes.train_tmr, len(ROLES))
    if processes == 1:
        for role in ROLES:
            train_encoder(settings, name, role == "evaluator")
        return

    with side_by_side(processes) as pool:
        runs = [pool.submit(train_encoder, settings, name, role == "evaluator", False) for role in ROLES]
        for future in runs:
            future.result()  # the first failure is raised here (the other run finishes or fails on its own)


def train_encoder(settings: Settings, name: str, evaluator: bool, progress: bool = True) -> None:
    """Train the encoder ``name`` with the ``tmr`` settings: the conditioning TMR, or with ``evaluator`` the
    evaluation's own (its seed and folder). ``progress=False`` (a pool's worker) logs a line per epoch
    instead of progress bars, so two runs side by side stay readable."""
    paths, tmr = settings.paths, settings.tmr
    label = f"train_tmr {name} ({'evaluator' if evaluator else 'conditioner'})"
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
        model, history = fit_tmr(model_cfg, train_cfg, train_set, val_set, work_dir, progress=progress,
                                 epoch_callback=None if progress else epoch_logger(label, tmr.train.epochs))
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
    print(f"{label}: {last['epoch']} epochs, train loss {last['train/loss']:.4f}, val loss "
          f"{last['val/loss']:.4f}, val t2m R@1 {last.get('val/all/t2m_R1', float('nan')):.1f}% -> {out}")



def epoch_logger(label: str, epochs: int) -> Callable[[int, dict[str, float]], None]:
    """An epoch callback that prints one flushed line per epoch (the progress of a pool's worker)."""
    def log(epoch: int, row: dict[str, float]) -> None:
        print(f"{label}: epoch {epoch + 1}/{epochs}, train loss {row['train/loss']:.4f}, "
              f"val loss {row['val/loss']:.4f}", flush=True)
    return log


def main() -> None:
    """Train the encoder named on the command line, as a conditioner and as an evaluator."""
    args = sys.argv[1:]
    if len(args) != 1 or args[0] not in TEXT_SLOTS:
        sys.exit(f"usage: python -m stages.train_tmr <{'|'.join(TEXT_SLOTS)}>")
    name = args[0]
    stage_main(f"train_tmr@{name}", lambda settings: run(settings, name))


if __name__ == "__main__":
    main()
