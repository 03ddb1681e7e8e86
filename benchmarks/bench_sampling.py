"""Sampling throughput of LGTM: samples per second for 1000 DDIM, 50 DDIM and 20 DPM-Solver++ steps.

Uses a randomly initialised model of the chosen params.yaml profile (speed does not depend on the
weights) and random text latents, at full-window length. On a GPU the batch size doubles until
memory runs out or throughput stops improving ("the batch size that fills the device"); on the CPU
the batch is --batch. ``--extrapolate K`` times only the first K denoising steps of each run and
scales to the full count (the per-step cost is the same at every step), for slow CPUs.

    python -m benchmarks.bench_sampling --profile paper --device auto
"""
from __future__ import annotations

import argparse
import time

import torch

from benchmarks import settings_for
from models.diffusion import sample
from models.lgtm import LGTM, LGTMConfig
from models.lgtm_train import autocast_dtype
from motion.core.device import resolve_device
from motion.core.sampling import SamplingConfig
from motion.core.settings import convert

RUNS = (("ddim", 1000), ("ddim", 50), ("dpmsolver++", 20))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_sampling(model: LGTM, batch: int, sampler: str, steps: int, device: str, amp: torch.dtype | None,
                  timed_steps: int | None = None) -> float:
    """Seconds for one batched sampling run (or its first ``timed_steps`` steps, scaled to all steps)."""
    text = torch.randn(batch, 7, model.cfg.text_dim, device=device)
    lengths = torch.full((batch,), model.cfg.window, device=device)
    run_steps = steps if timed_steps is None else min(steps, timed_steps)
    gen = torch.Generator().manual_seed(0)
    with torch.autocast("cuda", amp, enabled=amp is not None):
        sample(model, text, lengths, SamplingConfig(sampler, 2, 0.0, 1.0), generator=gen)  # warm-up
        _sync(device)
        start = time.perf_counter()
        if run_steps == steps:
            sample(model, text, lengths, SamplingConfig(sampler, steps, 0.0, 1.0), generator=gen)
        else:  # the first run_steps steps of a `steps`-step schedule: same per-step work
            _partial(model, text, lengths, sampler, steps, run_steps, gen)
        _sync(device)
    return (time.perf_counter() - start) * steps / run_steps


@torch.no_grad()
def _partial(model: LGTM, text: torch.Tensor, lengths: torch.Tensor, sampler: str, steps: int, run: int,
             gen: torch.Generator) -> None:
    from models.diffusion import lengths_to_mask, predict_x0, sampling_scheduler

    scheduler = sampling_scheduler(sampler)
    scheduler.set_timesteps(steps)
    mask = lengths_to_mask(lengths, model.cfg.window)
    x = torch.randn(len(lengths), model.cfg.window, 263, generator=gen).to(text.device)
    for t in scheduler.timesteps[:run]:
        x = scheduler.step(predict_x0(model, x, t, text, mask), t, x).prev_sample


def fill_batch(model: LGTM, device: str, amp: torch.dtype | None, start: int, limit: int) -> int:
    """Largest power-of-two batch (up to ``limit``) before memory runs out or throughput stops rising."""
    best, best_rate, batch = start, 0.0, start
    while batch <= limit:
        try:
            seconds = time_sampling(model, batch, "ddim", 10, device, amp)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        rate = batch / seconds
        if rate < best_rate * 1.05:
            break
        best, best_rate, batch = batch, rate, batch * 2
    return best


def main() -> None:
    """Print samples/s per sampler and step count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="settings profile (default: params.yaml's profile)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=8, help="CPU batch size / first GPU batch size tried")
    parser.add_argument("--max-batch", type=int, default=4096)
    parser.add_argument("--extrapolate", type=int, default=None, help="time only this many steps per run")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = settings_for(args.profile)
    model_cfg = convert(LGTMConfig, settings.lgtm.model)
    device = resolve_device(args.device)
    amp = autocast_dtype(settings.lgtm.train.precision, device)
    torch.manual_seed(0)
    model = LGTM(model_cfg).to(device).eval()
    batch = args.batch if device == "cpu" else fill_batch(model, device, amp, args.batch, args.max_batch)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"CPU ({args.threads} threads)"
    print(f"LGTM sampling, {settings.profile} profile, window {model_cfg.window}, batch {batch}, {name}, "
          f"{'fp32' if amp is None else amp}")
    for sampler, steps in RUNS:
        seconds = time_sampling(model, batch, sampler, steps, device, amp, args.extrapolate)
        note = f" (extrapolated from {args.extrapolate} steps)" if args.extrapolate and args.extrapolate < steps else ""
        print(f"  {sampler:12s} {steps:5d} steps: {batch / seconds:9.3f} samples/s  "
              f"({seconds:8.2f} s per batch){note}")


if __name__ == "__main__":
    main()
