"""Cost of constraint guidance: seconds per sample, guided vs unguided, on the CPU model of the default profile.

A randomly initialised LGTM of the params profile (speed does not depend on the weights), random text latents,
full-window motions, DDIM; guided runs enforce three constraints (a touch, a foot lift, a torso pitch) with 1 and
5 guidance steps per denoising step (``models.guidance``). Each setting is timed ``--repeats`` times and the
fastest run is kept (the machine is shared). Writes a bar chart when ``--figure`` is given.

    python -m benchmarks.bench_guidance --batch 1 8 --steps 50 --figure docs/guidance_cost.png
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import settings_for
from models.diffusion import sample
from models.guidance import MotionGuidance, parse_constraints
from models.lgtm import LGTM, LGTMConfig
from motion.core.parts import FEATURE_DIM
from motion.core.sampling import SamplingConfig
from motion.core.settings import convert

GOAL = "near right_wrist left_shoulder 0.05 frames 20-40; above right_foot 0.2 frames 30-end; pitch 30 frames 10-end"


def seconds_per_sample(model: LGTM, batch: int, steps: int, iterations: int | None, repeats: int) -> float:
    """Fastest of ``repeats`` runs of one batch, divided by the batch (``iterations`` None: unguided)."""
    text = torch.randn(batch, 7, model.cfg.text_dim, generator=torch.Generator().manual_seed(0))
    lengths = torch.full((batch,), model.cfg.window)
    rng = np.random.default_rng(0)
    mean, std = torch.from_numpy(rng.normal(0, 0.1, FEATURE_DIM)).float(), torch.full((FEATURE_DIM,), 0.1)
    guidance = None
    if iterations is not None:
        guidance = MotionGuidance([parse_constraints(GOAL)] * batch, mean, std, 1.0, iterations)
    cfg = SamplingConfig("ddim", steps, 0.0, 1.0)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(1), guidance=guidance)
        best = min(best, time.perf_counter() - start)
    return best / batch


def main() -> None:
    """Print seconds per sample for each batch size and guidance setting; optionally draw them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--figure", default=None, help="write a bar chart (PNG) here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = settings_for(args.profile)
    cfg = convert(LGTMConfig, settings.lgtm.model)
    torch.manual_seed(0)
    model = LGTM(cfg).eval()
    settings_run = {"unguided": None, "guided, 1 step": 1, "guided, 5 steps": 5}
    print(f"LGTM {settings.profile} profile (dim {cfg.dim}, window {cfg.window}), DDIM {args.steps} steps, CPU "
          f"{args.threads} thread(s); seconds per sample (fastest of {args.repeats})")
    results: dict[int, dict[str, float]] = {}
    for batch in args.batch:
        results[batch] = {name: seconds_per_sample(model, batch, args.steps, it, args.repeats)
                          for name, it in settings_run.items()}
        row = results[batch]
        cells = [f"{k} {v:.3f} s (x{v / row['unguided']:.2f})" for k, v in row.items()]
        print(f"  batch {batch:3d}: " + ", ".join(cells))
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.2))
        width = 0.8 / len(settings_run)
        for i, name in enumerate(settings_run):
            ax.bar(np.arange(len(results)) + i * width, [results[b][name] for b in results], width, label=name)
        ax.set_xticks(np.arange(len(results)) + width * (len(settings_run) - 1) / 2, [f"batch {b}" for b in results])
        ax.set_ylabel("seconds per sample")
        ax.set_title(f"Constraint guidance cost: {settings.profile} LGTM, DDIM {args.steps} steps, CPU")
        ax.legend(fontsize=8)
        fig.tight_layout()
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=110)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
