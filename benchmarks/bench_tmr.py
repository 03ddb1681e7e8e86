"""Training throughput of TMR (samples/s): the cpu profile here, and the paper profile on a GPU when there is one.

Batches have HumanML3D-like shapes (frames 40-199 cropped to the profile's tmr.train.crop_frames, 263-d
whole-body features, 384-d MiniLM tokens, 8-20 tokens); the model, losses and AdamW step are the real ones,
sized by params.yaml's ``tmr`` settings under each profile (``profiles.<name>`` laid over the base values).
Run: python benchmarks/bench_tmr.py
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as `python benchmarks/bench_tmr.py`

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks import settings_for  # noqa: E402
from models.tmr import TMR, TMRConfig  # noqa: E402
from motion.core.settings import to_dict  # noqa: E402
from motion.datasets import pad_sequences  # noqa: E402
from stages.settings import TMR as TMRSettings  # noqa: E402


def model_config(tmr: TMRSettings, motion_dim: int = 263, token_dim: int = 384) -> TMRConfig:
    """The TMR model and loss hyper-parameters of ``tmr``, as train_tmr builds them."""
    return TMRConfig(motion_dim=motion_dim, token_dim=token_dim, **to_dict(tmr.model), **to_dict(tmr.loss))


def fake_batch(batch_size: int, motion_dim: int, token_dim: int, generator: torch.Generator,
               crop_frames: int | None = None) -> dict:
    """One collated batch of random sequences with realistic lengths (cropped like the config's training)."""
    frames = [min(t, crop_frames or t) for t in torch.randint(40, 200, (batch_size,), generator=generator).tolist()]
    words = torch.randint(8, 21, (batch_size,), generator=generator).tolist()
    motion, motion_mask = pad_sequences([torch.randn(t, motion_dim, generator=generator) for t in frames])
    text, text_mask = pad_sequences([torch.randn(n, token_dim, generator=generator) for n in words])
    sentence = F.normalize(torch.randn(batch_size, token_dim, generator=generator), dim=1)
    return {"motion": motion, "motion_mask": motion_mask, "text": text, "text_mask": text_mask, "sentence": sentence}


def throughput(tmr: TMRSettings, device: str, steps: int, warmup: int, token_dim: int = 384,
               motion_dim: int = 263) -> float:
    """Training samples per second of one profile's TMR settings on ``device``."""
    torch.manual_seed(0)
    model = TMR(model_config(tmr, motion_dim, token_dim)).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=tmr.train.lr)
    batch_size = tmr.train.batch_size
    gen = torch.Generator().manual_seed(0)
    crop = tmr.train.crop_frames
    batches = [{k: v.to(device) for k, v in fake_batch(batch_size, motion_dim, token_dim, gen, crop).items()}
               for _ in range(4)]
    for i in range(warmup + steps):
        if i == warmup:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
        loss = model.losses(batches[i % len(batches)])["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    """Print samples/s per profile and device."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paper-cpu", action="store_true", help="also time the paper profile on the CPU (slow)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = [("cpu", "cpu", args.steps)]
    if args.paper_cpu:
        runs += [("paper", "cpu", max(2, args.steps // 10))]
    if torch.cuda.is_available():
        runs += [("paper", "cuda", 10 * args.steps)]
    for name, device, steps in runs:
        tmr = settings_for(name).tmr
        rate = throughput(tmr, device, steps, warmup=2)
        params = sum(p.numel() for p in TMR(model_config(tmr)).parameters())
        print(f"tmr {name:5s} profile on {device:4s} ({params / 1e6:.2f} M params, {args.threads} threads): "
              f"{rate:8.1f} training samples/s")


if __name__ == "__main__":
    main()
