"""Training loop of the LGTM denoiser: AdamW + warm-up/cosine, DVCLive curves, safetensors checkpoints, resume, DDP.

Reproducibility: every random draw of a step (batch order, crops, timesteps, noise, condition drops,
dropout) is derived from (seed, epoch or step), never from a running RNG state, so a run resumed
from a checkpoint continues exactly like an uninterrupted one. Data parallelism (``torchrun``; gloo on
the CPU, nccl on GPUs): each rank takes its slice of the global batch and of the global batch's noise,
and divides its loss by the global number of valid frames, so N ranks with batch b equal one process
with batch N*b (up to float summation order and dropout).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from diffusers.optimization import get_cosine_schedule_with_warmup
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from models.diffusion import SamplingConfig, diffusion_loss, draw_noise, training_scheduler
from models.lgtm import LGTM, LGTMConfig, count_parameters
from motion.core.io import atomic_path, write_json

CHECKPOINT_DIR = "checkpoints"
LAST = "last.safetensors"
BEST = "best.safetensors"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


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


def resolve_settings(section: dict[str, Any]) -> tuple[LGTMConfig, TrainConfig, SamplingConfig]:
    """Model, training and sampling settings of params.yaml's ``lgtm`` section for its selected ``config``.

    ``lgtm.sampling`` holds the sampling defaults; ``configs.<name>.sampling`` may override any of them.
    """
    name = section["config"]
    if name not in section["configs"]:
        raise KeyError(f"lgtm.config is {name!r} but lgtm.configs has only {sorted(section['configs'])}")
    chosen = section["configs"][name]
    model = LGTMConfig.from_dict(chosen.get("model", {}))
    train_cfg = TrainConfig.from_dict(chosen.get("train", {}))
    sampling = SamplingConfig.from_dict({**section.get("sampling", {}), **chosen.get("sampling", {})})
    return model, train_cfg, sampling


def model_code_hash() -> str:
    """Hash of the source files that define the model and its training, so a code change never resumes a stale run."""
    import hashlib

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("lgtm.py", "conformer.py", "smoothnet.py", "diffusion.py", "lgtm_train.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def fingerprint(model_cfg: LGTMConfig, cfg: TrainConfig, num_train: int) -> str:
    """What a checkpoint must match to be resumed (settings that change the run, the code, and the data size)."""
    skip = {"val_every", "checkpoint_every", "log_every", "num_workers"}
    return json.dumps({"model": model_cfg.to_dict(), "train": {k: v for k, v in asdict(cfg).items() if k not in skip},
                       "num_train": num_train, "code": model_code_hash()}, sort_keys=True)


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


# ----------------------------------------------------------------------------- checkpoints

def save_model(model: nn.Module, path: str | Path) -> None:
    """Model weights as safetensors, atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, lr_schedule: Any,
                    scaler: torch.amp.GradScaler | None, meta: dict[str, Any]) -> None:
    """Model + AdamW moments as tensors and everything else as JSON metadata, in one safetensors file."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for i, state in opt["state"].items():
        for k, v in state.items():
            tensors[f"optim.{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    sched = {k: v for k, v in lr_schedule.state_dict().items() if k != "lr_lambdas"}
    info = {**meta, "param_groups": opt["param_groups"], "lr_schedule": sched,
            "scaler": scaler.state_dict() if scaler is not None else None}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"json": json.dumps(info)})


def _checkpoint_meta(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return json.loads(f.metadata()["json"])


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, lr_schedule: Any,
                    scaler: torch.amp.GradScaler | None) -> dict[str, Any]:
    """Restore a checkpoint written by save_checkpoint; returns its metadata."""
    info = _checkpoint_meta(path)
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    lr_schedule.load_state_dict({**info["lr_schedule"], "lr_lambdas": [None] * len(optimizer.param_groups)})
    if scaler is not None and info.get("scaler"):
        scaler.load_state_dict(info["scaler"])
    return info


def load_lgtm(folder: str | Path, device: str | torch.device = "cpu", weights: str = MODEL_FILE) -> LGTM:
    """Load a trained LGTM (``config.json`` + ``model.safetensors``) in eval mode."""
    from motion.core.errors import DataError

    folder = Path(folder)
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file():
        raise DataError(cfg_path, "LGTM config is missing", "run `python -m stages.train_lgtm`")
    cfg = LGTMConfig.from_dict(json.loads(cfg_path.read_text(encoding="utf-8"))["model"])
    model = LGTM(cfg)
    model.load_state_dict(load_file(str(folder / weights), device=str(device)))
    return model.to(device).eval()


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


def train(model_cfg: LGTMConfig, cfg: TrainConfig, train_set: Dataset, val_set: Dataset | None, out_dir: str | Path,
          device: str = "cpu", resume: bool = True, stop_at: int | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Train (or resume) LGTM into ``out_dir``; returns the final metrics (also written to metrics.json).

    ``stop_at`` ends the run after that step with a checkpoint, as an interruption would (the learning
    rate schedule still spans the whole run). Call from every rank under torchrun.
    """
    from dvclive import Live

    out_dir = Path(out_dir)
    rank, world, device = setup_distributed(device)
    amp = autocast_dtype(cfg.precision, device)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = LGTM(model_cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    global_batch = cfg.batch_size * world
    steps_per_epoch = len(train_set) // global_batch
    if steps_per_epoch < 1:
        raise ValueError(f"the training set has {len(train_set)} samples, fewer than one global batch ({global_batch})")
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_steps, total_steps)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    scheduler = training_scheduler()

    step, best_val = 0, math.inf
    val_loss, last_loss = math.nan, math.nan
    last_path = out_dir / CHECKPOINT_DIR / LAST
    run_id = fingerprint(model_cfg, cfg, len(train_set))
    if resume and last_path.is_file():
        if _checkpoint_meta(last_path).get("fingerprint") == run_id:
            info = load_checkpoint(last_path, model, optimizer, lr_schedule, scaler)
            step, best_val = int(info["step"]), float(info["best_val"])
            val_loss, last_loss = float(info.get("val_loss", math.nan)), float(info.get("last_loss", math.nan))
        elif rank == 0:
            tqdm.write(f"{last_path}: settings or data changed since this checkpoint; training from scratch")
    if step == 0 and rank == 0:
        for stale in (out_dir / CHECKPOINT_DIR / BEST, last_path):
            stale.unlink(missing_ok=True)
    _barrier(world)
    ddp_model: nn.Module = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.startswith("cuda") else None)

    live = None
    if rank == 0:
        live = Live(dir=str(out_dir / "dvclive"), resume=resume and step > 0, save_dvc_exp=False, dvcyaml=False)
        live.log_param("trainable_parameters", count_parameters(model))
    end = total_steps if stop_at is None else min(stop_at, total_steps)
    bar = tqdm(total=end, initial=step, desc="train_lgtm", unit="step", disable=not progress or rank != 0)
    model.train()

    def checkpoint() -> None:
        if rank == 0:
            save_checkpoint(last_path, model, optimizer, lr_schedule, scaler,
                            {"step": step, "best_val": best_val, "total_steps": total_steps,
                             "val_loss": val_loss, "last_loss": last_loss, "fingerprint": run_id})
        _barrier(world)

    def validate() -> None:
        nonlocal val_loss, best_val
        if val_set is not None and len(val_set) > 0 and rank == 0:
            val_loss = validation_loss(model, val_set, cfg.batch_size, cfg.seed, device, amp)
            live.step = step
            live.log_metric("val/loss", val_loss)
            if val_loss < best_val:
                best_val = val_loss
                save_model(model, out_dir / CHECKPOINT_DIR / BEST)
        _barrier(world)

    while step < end:
        epoch, offset = divmod(step, steps_per_epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        batches = epoch_batches(len(train_set), global_batch, cfg.seed, epoch)[offset:]
        mine = [b[rank * cfg.batch_size:(rank + 1) * cfg.batch_size] for b in batches]
        loader = DataLoader(train_set, batch_sampler=mine, num_workers=cfg.num_workers, collate_fn=collate)
        for batch in loader:
            gen = step_generator(cfg.seed, step)
            draw = draw_noise(global_batch, batch["mask"].shape[1], gen, cfg.cond_drop_prob)
            part = slice(rank * cfg.batch_size, (rank + 1) * cfg.batch_size)
            draw.timesteps, draw.noise, draw.keep_text = draw.timesteps[part], draw.noise[part], draw.keep_text[part]
            torch.manual_seed((cfg.seed * 1_000_003 + step) * 16 + rank)  # dropout
            mask = batch["mask"].to(device)
            num_valid = _all_reduce_sum(mask.sum().float(), world) / world
            with torch.autocast("cuda", amp, enabled=amp is not None):
                loss = diffusion_loss(ddp_model, {p: v.to(device) for p, v in batch["parts"].items()},
                                      batch["text"].to(device), mask, draw, scheduler, num_valid)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            lr_schedule.step()
            step += 1
            last_loss = float(_all_reduce_sum(loss.detach().float(), world)) / world
            if not math.isfinite(last_loss):
                raise FloatingPointError(f"training loss became {last_loss} at step {step}; lower lr or use fp32")
            if rank == 0:
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}")
                if step % cfg.log_every == 0 or step == end:
                    live.step = step
                    live.log_metric("train/loss", last_loss)
                    live.log_metric("train/lr", lr_schedule.get_last_lr()[0])
            if step % cfg.val_every == 0 or step == total_steps:
                validate()
            if step % cfg.checkpoint_every == 0 or step == end:
                checkpoint()
            if step >= end:
                break
    bar.close()

    metrics: dict[str, Any] = {}
    if rank == 0:
        finite = lambda x: x if math.isfinite(x) else None  # noqa: E731 - JSON has no NaN
        metrics = {"step": step, "total_steps": total_steps, "train_loss": finite(last_loss),
                   "val_loss": finite(val_loss), "best_val_loss": finite(best_val),
                   "trainable_parameters": count_parameters(model), "world_size": world}
        if step >= total_steps:
            best = out_dir / CHECKPOINT_DIR / BEST
            if best.is_file():
                model.load_state_dict(load_file(str(best), device=str(device)))
            save_model(model, out_dir / MODEL_FILE)
            write_json(out_dir / CONFIG_FILE, {"model": model_cfg.to_dict(), "train": asdict(cfg),
                                               "exported": "best" if best.is_file() else "last"})
            write_json(out_dir / "metrics.json", metrics)
        live.end()
        plot_curves(out_dir / "dvclive")
    _barrier(world)
    return metrics
