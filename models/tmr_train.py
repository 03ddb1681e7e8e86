"""Training loop of one TMR encoder: AdamW, per-epoch validation, DVCLive logs, resumable checkpoints.

Everything random is seeded: the model initialisation (``seed``), the epoch's caption choice, order
and crops (``seed`` and the epoch number) and dropout / latent sampling (the torch generator, whose
state is saved in every checkpoint). A run interrupted after a checkpoint and resumed therefore
ends with the same weights as an uninterrupted run (on the same device).

The checkpoint is one safetensors file in the work folder (weights, AdamW moments, torch RNG; the
epoch, the metric history and a fingerprint of the setup in its metadata). It is only resumed when
the fingerprint matches the current model, training settings and training samples.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from models.checkpoint import checkpoint_meta, fingerprint, load_training_state, save_training_state
from models.tmr import TMR, TMRConfig
from motion.core.device import resolve_device
from motion.datasets import TextMotionDataset, collate_text_motion, epoch_indices, first_caption_indices
from motion.eval.retrieval import batched_retrieval_metrics, retrieval_metrics

CHECKPOINT_FILE = "checkpoint.safetensors"
LOSS_TERMS = ("loss", "recons", "kl", "latent", "contrastive")

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one TMR training (paper: batch 32, lr 1e-4, 500 epochs)."""

    epochs: int = 500
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01  # torch's AdamW default, which TMR keeps
    seed: int = 1234
    one_per_motion: bool = True  # TMR: one random caption per motion and epoch; False: every caption
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda
    checkpoint_every: int = 1
    val_batch_size: int = 32  # the small-batch retrieval protocol logged on the validation split

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring keys that are not training settings."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a collated batch to ``device``."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def run_fingerprint(model_cfg: TMRConfig, train_cfg: TrainConfig, train_set: TextMotionDataset) -> str:
    """Hash of what determines the training trajectory (not the epoch count, device or workers)."""
    settings = {k: v for k, v in asdict(train_cfg).items() if k not in ("epochs", "device", "num_workers")}
    samples = [(s.seg_id, s.text, s.start, s.end) for s in train_set.segments]
    return fingerprint({"model": asdict(model_cfg), "train": settings, "name": train_set.name, "samples": samples,
                        "mean": train_set.mean.tolist(), "std": train_set.std.tolist()})


def save_checkpoint(path: Path, model: TMR, optimizer: torch.optim.Optimizer, epoch: int,
                    history: list[dict[str, float]], key: str) -> None:
    """Weights, optimiser state, the torch RNG states (dropout, latent sampling) and progress, atomically."""
    rng = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"rng.cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    save_training_state(path, model, optimizer, {"epoch": epoch, "history": history, "fingerprint": key}, rng)


def load_checkpoint(path: Path, model: TMR, optimizer: torch.optim.Optimizer,
                    key: str) -> tuple[int, list[dict[str, float]]] | None:
    """Restore a matching checkpoint; returns (epochs done, history), or None when absent or stale."""
    if not path.is_file() or checkpoint_meta(path).get("fingerprint") != key:
        return None
    meta, rng = load_training_state(path, model, optimizer)
    torch.set_rng_state(rng["rng.torch"])
    cuda_states = [rng[k] for k in sorted(k for k in rng if k.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    return int(meta["epoch"]), meta["history"]


@torch.no_grad()
def encode_pairs(model: TMR, dataset: TextMotionDataset, indices: list[int], device: torch.device,
                 batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latent means of the texts and motions of ``indices``, plus their sentence embeddings."""
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, sampler=indices, collate_fn=collate_text_motion)
    texts, motions, sentences = [], [], []
    for batch in loader:
        batch = to_device(batch, device)
        texts.append(model.encode_text(batch["text"], batch["text_mask"]).cpu().numpy())
        motions.append(model.encode_motion(batch["motion"], batch["motion_mask"]).cpu().numpy())
        sentences.append(batch["sentence"].cpu().numpy())
    return np.concatenate(texts), np.concatenate(motions), np.concatenate(sentences)


@torch.no_grad()
def validate(model: TMR, dataset: TextMotionDataset, device: torch.device, batch_size: int,
             retrieval_batch: int) -> dict[str, float]:
    """Loss terms (latent means, no sampling) and retrieval on the first caption of every motion."""
    indices = first_caption_indices(dataset.segments)
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, sampler=indices, collate_fn=collate_text_motion)
    sums = dict.fromkeys(LOSS_TERMS, 0.0)
    for batch in loader:
        losses = model.losses(to_device(batch, device), sample=False)
        for k in LOSS_TERMS:
            sums[k] += float(losses[k]) * len(batch["seg_id"])
    out = {f"val/{k}": v / len(indices) for k, v in sums.items()}
    text, motion, _ = encode_pairs(model, dataset, indices, device)
    protocols = {"all": retrieval_metrics(text, motion)}
    if len(indices) >= retrieval_batch:
        protocols[f"batches_{retrieval_batch}"] = batched_retrieval_metrics(text, motion, retrieval_batch)
    for protocol, directions in protocols.items():
        for direction, metrics in directions.items():
            for k in ("R1", "R3", "MedR"):
                out[f"val/{protocol}/{direction}_{k}"] = metrics[k]
    return out


def train_epoch(model: TMR, optimizer: torch.optim.Optimizer, dataset: TextMotionDataset, cfg: TrainConfig,
                epoch: int, device: torch.device, progress: bool) -> dict[str, float]:
    """One pass over the epoch's samples; returns the sample-weighted mean of each loss term."""
    dataset.set_epoch(epoch)
    order = epoch_indices(dataset.segments, epoch, cfg.seed, cfg.one_per_motion)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=order, collate_fn=collate_text_motion,
                        num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(cfg.seed + epoch))
    model.train()
    sums = dict.fromkeys(LOSS_TERMS, 0.0)
    bar = tqdm(loader, desc=f"{dataset.name} epoch {epoch + 1}/{cfg.epochs}", leave=False, disable=not progress)
    for batch in bar:
        losses = model.losses(to_device(batch, device))
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        for k in LOSS_TERMS:
            sums[k] += float(losses[k].detach()) * len(batch["seg_id"])
        bar.set_postfix(loss=f"{float(losses['loss'].detach()):.4f}")
    return {f"train/{k}": v / len(order) for k, v in sums.items()}


def open_live(folder: Path, history: list[dict[str, float]]) -> dvclive.Live:  # noqa: F821
    """A fresh DVCLive logger in ``folder`` with the history of resumed epochs replayed into it."""
    from dvclive import Live

    live = Live(dir=str(folder), resume=False, report=None, save_dvc_exp=False, dvcyaml=None)
    for row in history:
        log_row(live, row)
    return live


def log_row(live: dvclive.Live, row: dict[str, float]) -> None:  # noqa: F821
    """Log one epoch's metrics and advance the DVCLive step."""
    for k, v in row.items():
        if k != "epoch":
            live.log_metric(k, v)
    live.next_step()


def plot_history(history: list[dict[str, float]]) -> dict[str, matplotlib.figure.Figure]:  # noqa: F821
    """PNG-ready figures of the loss terms (train vs val) and of the validation retrieval metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figures = {}
    fig, axes = plt.subplots(1, len(LOSS_TERMS), figsize=(4 * len(LOSS_TERMS), 3.2))
    for ax, term in zip(axes, LOSS_TERMS):
        for split in ("train", "val"):
            key = f"{split}/{term}"
            if key in history[0]:
                ax.plot(epochs, [row[key] for row in history], label=split)
        ax.set_title(term)
        ax.set_xlabel("epoch")
        ax.set_yscale("log" if all(row.get(f"train/{term}", 1.0) > 0 for row in history) else "linear")
        ax.legend()
    fig.tight_layout()
    figures["losses.png"] = fig
    retrieval = sorted({k.rsplit("_", 1)[0] for k in history[0] if k.startswith("val/") and k.endswith("_R1")})
    if retrieval:
        fig, axes = plt.subplots(1, len(retrieval), figsize=(5 * len(retrieval), 3.2), squeeze=False)
        for ax, prefix in zip(axes[0], retrieval):
            for metric in ("R1", "R3"):
                ax.plot(epochs, [row[f"{prefix}_{metric}"] for row in history], label=metric)
            ax.set_title(prefix.removeprefix("val/"))
            ax.set_xlabel("epoch")
            ax.set_ylabel("recall (%)")
            ax.legend()
        fig.tight_layout()
        figures["retrieval.png"] = fig
    return figures


def fit_tmr(model_cfg: TMRConfig, train_cfg: TrainConfig, train_set: TextMotionDataset,
            val_set: TextMotionDataset, work_dir: str | Path, progress: bool = True,
            epoch_callback: EpochCallback | None = None) -> tuple[TMR, list[dict[str, float]]]:
    """Train (or resume training) one TMR; returns the model and the per-epoch metric history.

    ``work_dir`` holds the checkpoint and the live DVCLive folder (``dvclive/``, with PNG plots
    at the end). ``epoch_callback(epoch, metrics)`` runs after each epoch's checkpoint.
    """
    from motion.core.seeding import seed_everything

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(resolve_device(train_cfg.device))
    seed_everything(train_cfg.seed)
    model = TMR(model_cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    key = run_fingerprint(model_cfg, train_cfg, train_set)
    checkpoint = work_dir / CHECKPOINT_FILE
    restored = load_checkpoint(checkpoint, model, optimizer, key)
    start, history = restored if restored is not None else (0, [])
    if restored is not None and progress:
        tqdm.write(f"{train_set.name}: resuming after epoch {start} from {checkpoint}")
    live = open_live(work_dir / "dvclive", history)
    epochs = tqdm(range(start, train_cfg.epochs), desc=f"train_tmr {train_set.name}", initial=start,
                  total=train_cfg.epochs, disable=not progress)
    for epoch in epochs:
        row: dict[str, float] = {"epoch": epoch + 1}
        row.update(train_epoch(model, optimizer, train_set, train_cfg, epoch, device, progress))
        row.update(validate(model, val_set, device, train_cfg.batch_size, train_cfg.val_batch_size))
        history.append(row)
        log_row(live, row)
        epochs.set_postfix(loss=f"{row['train/loss']:.4f}", val=f"{row['val/loss']:.4f}")
        if (epoch + 1) % train_cfg.checkpoint_every == 0 or epoch + 1 == train_cfg.epochs:
            save_checkpoint(checkpoint, model, optimizer, epoch + 1, history, key)
        if epoch_callback is not None:
            epoch_callback(epoch, row)
    if history:
        for name, fig in plot_history(history).items():
            live.log_image(name, fig)
    live.end()
    return model.eval(), history


def copy_live(work_dir: str | Path, out_dir: Path) -> None:
    """Copy the DVCLive folder (metrics, PNG plots) of a finished training into ``out_dir``."""
    shutil.copytree(Path(work_dir) / "dvclive", out_dir / "dvclive")

