"""Time the evaluation metrics at the sizes the evaluate and prompt_study stages use.

Run: python -m benchmarks.bench_metrics [--samples 4384] [--dim 256] [--replications 20]
Prints seconds per call; the HumanML3D test split has 4384 captions, TMR latents are 256-d.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from motion.eval import metrics
from motion.study import constraints


def _time(label: str, fn, repeat: int = 3) -> None:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<48s} {best * 1e3:9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4384)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--replications", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    real = rng.normal(size=(args.samples, args.dim))
    gen = real + rng.normal(scale=0.5, size=real.shape)
    text = real + rng.normal(scale=0.8, size=real.shape)

    print(f"samples={args.samples} dim={args.dim}")
    _time("fid", lambda: metrics.fid(real, gen))
    _time("r_precision (batches of 32)", lambda: metrics.r_precision(text, gen, np.random.default_rng(1)))
    _time("matching_score", lambda: metrics.matching_score(text, gen))
    _time("diversity (300 pairs)", lambda: metrics.diversity(gen, np.random.default_rng(1)))
    mm = rng.normal(size=(100, 30, args.dim))
    _time("multimodality (100 texts x 30)", lambda: metrics.multimodality(mm, np.random.default_rng(1)))

    def one_replication(r: np.random.Generator) -> dict[str, float]:
        top = metrics.r_precision(text, gen, r)
        return {"top1": top[0], "top3": top[2], "diversity": metrics.diversity(gen, r)}

    _time(f"{args.replications} replications (R-prec + diversity)",
          lambda: metrics.evaluate_replications(one_replication, args.replications, 1234), repeat=1)

    joints = rng.normal(scale=0.3, size=(196, 22, 3)) + np.array([0.0, 0.9, 0.0])
    _time("all constraints + plausibility, 196 frames",
          lambda: [constraints.measure_constraint(n, joints) for n in constraints.CONSTRAINTS]
          + [constraints.plausibility(joints)])


if __name__ == "__main__":
    main()
