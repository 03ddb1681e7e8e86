"""Seconds per training step: the LGTM CPU config of params.yaml, a given model size, and a reference workload.

The reference (a 4-layer d=128 transformer encoder on batch 64 x 196 frames, 2 threads) makes figures from
different machines comparable: the development brief quotes ~1.6 s for it.

Run:  python -m benchmarks.bench_lgtm_step [--threads 1] [--steps 3]
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from models.lgtm import LGTMConfig, build_denoiser
from motion.core.parts import PART_DIMS, PART_NAMES


def seconds_per_step(model: torch.nn.Module, run, steps: int) -> float:
    """Mean wall time of ``steps`` AdamW steps of ``run(model)`` (a loss), after one warm-up step."""
    opt = torch.optim.AdamW(model.parameters(), 1e-3)

    def step() -> None:
        loss = run(model)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def lgtm_step(cfg: LGTMConfig, batch: int, steps: int) -> float:
    """A denoiser training step on random data of the config's window."""
    x = {p: torch.randn(batch, cfg.window, PART_DIMS[p]) for p in PART_NAMES}
    text = torch.randn(batch, 7, cfg.text_dim)
    mask = torch.ones(batch, cfg.window, dtype=torch.bool)
    t = torch.randint(0, 1000, (batch,))

    def run(model: torch.nn.Module) -> torch.Tensor:
        pred = model(x, t, text, mask)
        return sum(((pred[p] - x[p]) ** 2).mean() for p in PART_NAMES)

    return seconds_per_step(build_denoiser(cfg), run, steps)


def main() -> None:
    """Print the figures."""
    from motion.core.settings import convert
    from stages.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    torch.set_num_threads(args.threads)
    cfg = convert(LGTMConfig, settings.lgtm.model, text_dim=64)
    batch = settings.lgtm.train.batch_size
    for architecture in ("lgtm", "whole_body"):
        variant = dataclasses.replace(cfg, architecture=architecture)
        params = sum(p.numel() for p in build_denoiser(variant).parameters())
        print(f"{architecture} (params.yaml lgtm.model, batch {batch}, {args.threads} thread(s)): "
              f"{lgtm_step(variant, batch, args.steps):.3f} s/step, {params:,} parameters")
    torch.set_num_threads(2)
    layer = torch.nn.TransformerEncoderLayer(128, 4, 512, batch_first=True)
    x = torch.randn(64, 196, 128)
    reference = seconds_per_step(torch.nn.TransformerEncoder(layer, 4), lambda m: m(x).pow(2).mean(), args.steps)
    print(f"reference (4-layer d=128 transformer, batch 64 x 196, 2 threads): {reference:.2f} s/step")


if __name__ == "__main__":
    main()
