"""Training loop of the LGTM denoiser: AdamW + warm-up/cosine, DVCLive curves, safetensors checkpoints, resume, DDP.

Reproducibility: every random draw of a step (batch order, crops, timesteps, noise, condition drops,
dropout) is derived from (seed, epoch or step), never from a running RNG state, so a run resumed
from a checkpoint continues exactly like an uninterrupted one. Data parallelism (``torchrun``; gloo on
the CPU, nccl on GPUs): each rank takes its slice of the global batch and of the global batch's noise,
and divides its loss by the global number of valid frames, so N ranks with batch b equal one process
with batch N*b (up to float summation order and dropout).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from diffusers.optimization import get_cosine_schedule_with_warmup
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from models.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    checkpoint_meta,
    fingerprint,
    load_training_state,
    save_model,
    save_training_state,
)
from models.diffusion import diffusion_loss, draw_noise, training_scheduler
from models.lgtm import LGTMConfig, build_denoiser, count_parameters
from motion.core.io import atomic_path, write_json

CHECKPOINT_DIR = "checkpoints"
LAST = "last.safetensors"
BEST = "best.safetensors"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (paper values as defaults)."""

    batch_size: int = 64          # per process
    epochs: int = 200
    max_steps: int = 0            # > 0 overrides epochs
    lr: float = 1e-4
    weight_decay: float = 0.01    # torch AdamW default, as the official code
    warmup_steps: int = 500
    cond_drop_prob: float = 0.0   # classifier-free guidance training (0 = off, as the paper)
    val_every: int = 1000         # steps; validation also runs at the end
    checkpoint_every: int = 1000  # steps
    log_every: int = 10
    num_workers: int = 0
    precision: str = "auto"       # auto (bf16 on GPUs that support it, else fp32) | fp32 | bf16 | fp16
    seed: int = 1234

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring keys that are not training settings."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def model_code_hash() -> str:
    """Hash of the source files that define the model and its training, so a code change never resumes a stale run."""
    import hashlib

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("lgtm.py", "baseline.py", "conformer.py", "smoothnet.py", "diffusion.py", "checkpoint.py",
                 "lgtm_train.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def run_fingerprint(model_cfg: LGTMConfig, cfg: TrainConfig, num_train: int, data_key: str = "") -> str:
    """What a checkpoint must match to be resumed: settings that change the run, the code, the data size and
    ``data_key`` (the caller's digest of what the run learns from, e.g. its text-latent cache)."""
    skip = {"val_every", "checkpoint_every", "log_every", "num_workers"}
    return fingerprint({"model": model_cfg.to_dict(), "train": {k: v for k, v in asdict(cfg).items() if k not in skip},
                        "num_train": num_train, "code": model_code_hash(), "data": data_key})


# ----------------------------------------------------------------------------- distributed helpers

def setup_distributed(device: str) -> tuple[int, int, str]:
    """Join the torchrun process group when WORLD_SIZE > 1; returns (rank, world size, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    rank = dist.get_rank()
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return rank, world, device


def _all_reduce_sum(value: Tensor, world: int) -> Tensor:
    if world > 1:
        value = value.clone()
        dist.all_reduce(value)
    return value


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


# ----------------------------------------------------------------------------- data order

def epoch_batches(num_items: int, global_batch: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's shuffled global batches (incomplete last batch dropped), seeded by (seed, epoch)."""
    order = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    return [order[i:i + global_batch] for i in range(0, num_items - global_batch + 1, global_batch)]


def step_generator(seed: int, step: int, salt: int = 0) -> torch.Generator:
    """A CPU generator for one step's draws, a pure function of (seed, step, salt)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + salt)


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack dataset items (parts, mask, text, length, seg_id) into a batch."""
    return {
        "parts": {p: torch.stack([it["parts"][p] for it in items]) for p in items[0]["parts"]},
        "mask": torch.stack([it["mask"] for it in items]),
        "text": torch.stack([it["text"] for it in items]),
        "length": torch.tensor([it["length"] for it in items]),
        "seg_id": [it["seg_id"] for it in items],
    }


# ----------------------------------------------------------------------------- plots

def plot_curves(dvclive_dir: Path) -> list[Path]:
    """One PNG per DVCLive metric series (plots/metrics/**/*.tsv) into plots/images/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    metrics_dir = dvclive_dir / "plots" / "metrics"
    written = []
    for tsv in sorted(metrics_dir.rglob("*.tsv")):
        frame = pd.read_csv(tsv, sep="\t")
        name = tsv.relative_to(metrics_dir).with_suffix("").as_posix()
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(frame["step"], frame[frame.columns[-1]])
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        if "loss" in name and (frame[frame.columns[-1]] > 0).all():
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        out = dvclive_dir / "plots" / "images" / (name.replace("/", "_") + ".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        written.append(out)
    return written


# ----------------------------------------------------------------------------- training

def autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """Autocast dtype for the precision setting; None means fp32 (always on the CPU)."""
    if not device.startswith("cuda") or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@torch.no_grad()
def validation_loss(model: nn.Module, dataset: Dataset, batch_size: int, seed: int, device: str,
                    amp: torch.dtype | None) -> float:
    """Masked part MSE over the validation set with fixed crops, timesteps and noise."""
    was_training = model.training
    model.eval()
    epoch = getattr(dataset, "epoch", None)
    if epoch is not None:
        dataset.set_epoch(0)
    scheduler = training_scheduler()
    total, frames = 0.0, 0.0
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    for i, batch in enumerate(loader):
        mask = batch["mask"].to(device)
        draw = draw_noise(len(mask), mask.shape[1], step_generator(seed, i, salt=1))
        with torch.autocast("cuda", amp, enabled=amp is not None):
            valid = mask.sum()
            loss = diffusion_loss(model, {p: v.to(device) for p, v in batch["parts"].items()},
                                  batch["text"].to(device), mask, draw, scheduler)
        total += float(loss) * float(valid)
        frames += float(valid)
    model.train(was_training)
    if epoch is not None:
        dataset.set_epoch(epoch)  # the same object may serve training
    return total / max(frames, 1.0)


class Trainer:
    """One LGTM training run into ``out_dir``: resume, step, validate, checkpoint, export.

    The model, AdamW, the warm-up/cosine schedule and the run's fingerprint are set up on construction
    (identical initial weights on every rank); ``run`` resumes a matching checkpoint and trains to the end
    (or to ``stop_at``). Call from every rank under torchrun.
    """

    def __init__(self, model_cfg: LGTMConfig, cfg: TrainConfig, train_set: Dataset, val_set: Dataset | None,
                 out_dir: str | Path, device: str = "cpu", progress: bool = True, data_key: str = "") -> None:
        self.model_cfg, self.cfg, self.train_set, self.val_set = model_cfg, cfg, train_set, val_set
        self.out_dir, self.progress = Path(out_dir), progress
        self.rank, self.world, self.device = setup_distributed(device)
        self.amp = autocast_dtype(cfg.precision, self.device)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.model = build_denoiser(model_cfg).to(self.device)
        self.ddp_model: nn.Module = self.model
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.global_batch = cfg.batch_size * self.world
        self.steps_per_epoch = len(train_set) // self.global_batch
        if self.steps_per_epoch < 1:
            raise ValueError(f"the training set has {len(train_set)} samples, fewer than one global batch "
                             f"({self.global_batch})")
        self.total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * self.steps_per_epoch
        self.lr_schedule = get_cosine_schedule_with_warmup(self.optimizer, cfg.warmup_steps, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        self.scheduler = training_scheduler()
        self.step, self.best_val = 0, math.inf
        self.val_loss, self.last_loss = math.nan, math.nan
        self.run_id = run_fingerprint(model_cfg, cfg, len(train_set), data_key)
        self.live: Any = None

    @property
    def last_path(self) -> Path:
        """The checkpoint a run resumes from."""
        return self.out_dir / CHECKPOINT_DIR / LAST

    @property
    def best_path(self) -> Path:
        """The weights with the lowest validation loss so far."""
        return self.out_dir / CHECKPOINT_DIR / BEST

    def resume(self, resume: bool = True) -> None:
        """Continue from ``checkpoints/last`` when its fingerprint matches; else drop stale checkpoints."""
        if resume and self.last_path.is_file():
            if checkpoint_meta(self.last_path).get("fingerprint") == self.run_id:
                info, _ = load_training_state(self.last_path, self.model, self.optimizer)
                groups = len(self.optimizer.param_groups)
                self.lr_schedule.load_state_dict({**info["lr_schedule"], "lr_lambdas": [None] * groups})
                if self.scaler is not None and info.get("scaler"):
                    self.scaler.load_state_dict(info["scaler"])
                self.step, self.best_val = int(info["step"]), float(info["best_val"])
                self.val_loss, self.last_loss = float(info["val_loss"]), float(info["last_loss"])
            elif self.rank == 0:
                tqdm.write(f"{self.last_path}: settings or data changed since this checkpoint; training from scratch")
        if self.step == 0 and self.rank == 0:
            for stale in (self.best_path, self.last_path):
                stale.unlink(missing_ok=True)
        _barrier(self.world)

    def checkpoint(self) -> None:
        """Write ``checkpoints/last`` (rank 0): weights, AdamW, schedule, scaler and progress."""
        if self.rank == 0:
            sched = {k: v for k, v in self.lr_schedule.state_dict().items() if k != "lr_lambdas"}
            save_training_state(self.last_path, self.model, self.optimizer, {
                "step": self.step, "best_val": self.best_val, "total_steps": self.total_steps,
                "val_loss": self.val_loss, "last_loss": self.last_loss, "fingerprint": self.run_id,
                "lr_schedule": sched, "scaler": self.scaler.state_dict() if self.scaler is not None else None})
        _barrier(self.world)

    def validate(self) -> None:
        """Validation loss (rank 0), logged; the best weights so far go to ``checkpoints/best``."""
        if self.val_set is not None and len(self.val_set) > 0 and self.rank == 0:
            self.val_loss = validation_loss(self.model, self.val_set, self.cfg.batch_size, self.cfg.seed, self.device,
                                            self.amp)
            self.live.step = self.step
            self.live.log_metric("val/loss", self.val_loss)
            if self.val_loss < self.best_val:
                self.best_val = self.val_loss
                save_model(self.model, self.best_path)
        _barrier(self.world)

    def train_step(self, batch: dict[str, Any]) -> None:
        """One optimiser step on this rank's slice of the global batch, with the step's own random draws."""
        cfg, rank = self.cfg, self.rank
        draw = draw_noise(self.global_batch, batch["mask"].shape[1], step_generator(cfg.seed, self.step),
                          cfg.cond_drop_prob)
        part = slice(rank * cfg.batch_size, (rank + 1) * cfg.batch_size)
        draw.timesteps, draw.noise, draw.keep_text = draw.timesteps[part], draw.noise[part], draw.keep_text[part]
        torch.manual_seed((cfg.seed * 1_000_003 + self.step) * 16 + rank)  # dropout
        mask = batch["mask"].to(self.device)
        num_valid = _all_reduce_sum(mask.sum().float(), self.world) / self.world
        with torch.autocast("cuda", self.amp, enabled=self.amp is not None):
            loss = diffusion_loss(self.ddp_model, {p: v.to(self.device) for p, v in batch["parts"].items()},
                                  batch["text"].to(self.device), mask, draw, self.scheduler, num_valid)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.lr_schedule.step()
        self.step += 1
        self.last_loss = float(_all_reduce_sum(loss.detach().float(), self.world)) / self.world
        if not math.isfinite(self.last_loss):
            raise FloatingPointError(f"training loss became {self.last_loss} at step {self.step}; lower lr or use fp32")

    def epoch_loader(self) -> DataLoader:
        """This rank's batches of the current epoch from the current step on (crops seeded by the epoch)."""
        cfg = self.cfg
        epoch, offset = divmod(self.step, self.steps_per_epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        batches = epoch_batches(len(self.train_set), self.global_batch, cfg.seed, epoch)[offset:]
        mine = [b[self.rank * cfg.batch_size:(self.rank + 1) * cfg.batch_size] for b in batches]
        return DataLoader(self.train_set, batch_sampler=mine, num_workers=cfg.num_workers, collate_fn=collate)

    def metrics(self) -> dict[str, Any]:
        """The run's figures (JSON has no NaN: missing losses are None)."""
        finite = lambda x: x if math.isfinite(x) else None  # noqa: E731
        return {"step": self.step, "total_steps": self.total_steps, "train_loss": finite(self.last_loss),
                "val_loss": finite(self.val_loss), "best_val_loss": finite(self.best_val),
                "trainable_parameters": count_parameters(self.model), "world_size": self.world}

    def export(self) -> None:
        """model.safetensors (the best validation weights, else the last), config.json and metrics.json."""
        best = self.best_path
        if best.is_file():
            self.model.load_state_dict(load_file(str(best), device=str(self.device)))
        save_model(self.model, self.out_dir / MODEL_FILE)
        write_json(self.out_dir / CONFIG_FILE, {"model": self.model_cfg.to_dict(), "train": asdict(self.cfg),
                                                "exported": "best" if best.is_file() else "last"})
        write_json(self.out_dir / "metrics.json", self.metrics())

    def run(self, resume: bool = True, stop_at: int | None = None) -> dict[str, Any]:
        """Resume, train to the end (or ``stop_at``, with a checkpoint, as an interruption would), export.

        Returns the final metrics on rank 0 (also in metrics.json once the run is complete), {} elsewhere.
        """
        from dvclive import Live

        self.resume(resume)
        if self.world > 1:
            self.ddp_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.startswith("cuda") else None)
        if self.rank == 0:
            self.live = Live(dir=str(self.out_dir / "dvclive"), resume=resume and self.step > 0, save_dvc_exp=False,
                             dvcyaml=False)
            self.live.log_param("trainable_parameters", count_parameters(self.model))
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        bar = tqdm(total=end, initial=self.step, desc="train_lgtm", unit="step",
                   disable=not self.progress or self.rank != 0)
        self.model.train()
        while self.step < end:
            for batch in self.epoch_loader():
                self.train_step(batch)
                self.after_step(bar, end)
                if self.step >= end:
                    break
        bar.close()
        metrics: dict[str, Any] = {}
        if self.rank == 0:
            metrics = self.metrics()
            if self.step >= self.total_steps:
                self.export()
            self.live.end()
            plot_curves(self.out_dir / "dvclive")
        _barrier(self.world)
        return metrics

    def after_step(self, bar: tqdm, end: int) -> None:
        """Progress, logs, and the scheduled validation and checkpoint after a step."""
        cfg = self.cfg
        if self.rank == 0:
            bar.update(1)
            bar.set_postfix(loss=f"{self.last_loss:.4f}")
            if self.step % cfg.log_every == 0 or self.step == end:
                self.live.step = self.step
                self.live.log_metric("train/loss", self.last_loss)
                self.live.log_metric("train/lr", self.lr_schedule.get_last_lr()[0])
        if self.step % cfg.val_every == 0 or self.step == self.total_steps:
            self.validate()
        if self.step % cfg.checkpoint_every == 0 or self.step == end:
            self.checkpoint()
            if self.rank == 0 and not self.progress:  # no bar (e.g. runs side by side): a line per checkpoint
                print(f"train_lgtm {self.out_dir.name}: step {self.step}/{end}, loss {self.last_loss:.4f}", flush=True)


def train(model_cfg: LGTMConfig, cfg: TrainConfig, train_set: Dataset, val_set: Dataset | None, out_dir: str | Path,
          device: str = "cpu", resume: bool = True, stop_at: int | None = None,
          progress: bool = True, data_key: str = "") -> dict[str, Any]:
    """Train (or resume) LGTM into ``out_dir``; returns the final metrics (also written to metrics.json).

    ``stop_at`` ends the run after that step with a checkpoint, as an interruption would (the learning
    rate schedule still spans the whole run). Call from every rank under torchrun.
    """
    return Trainer(model_cfg, cfg, train_set, val_set, out_dir, device, progress, data_key).run(resume, stop_at)
