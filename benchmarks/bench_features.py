"""Speed of the HumanML3D feature extraction, side by side in one run on the same clips.

Run: ``python -m benchmarks.bench_features [--clips 500] [--repeats 3] [--threads 1]`` (every extractor
best of ``--repeats``; ``--published-repeats 1`` times the slow published code once).

Three extractors on the same synthetic clips (forward kinematics of smooth random rotations, 40-200
frames each) with the same thread settings: the published HumanML3D ``process_file`` one clip at a
time (the test oracle ``tests.oracles.humanml3d_process``, float32 torch arithmetic as published),
this project's batched extractor (all clips packed) and its per-clip loop. Prints frames/s, the
ratios to the published code, and the agreement of the features (max |difference|) with the
published code and with a float64 run of the same published code.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from motion.core.memory import keep_heap
from motion.data.features import extract_features, extract_features_batch
from tests.oracles.humanml3d_process import process_file
from tests.support.motions import synthetic_clip


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` wall-clock runs of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def machine() -> str:
    """One line naming the machine and the thread settings of this run."""
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                    if k in os.environ) or "no thread variables set"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (load {load}), "
            f"torch threads {torch.get_num_threads()}, {env}, numpy {np.__version__}, torch {torch.__version__}")


def main() -> None:
    """Time the three extractors on the same clips and print frames/s, ratios and agreement."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--published-repeats", type=int, default=None,
                        help="repeats of the (slow) published code (default: --repeats, so all three get the same)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every extractor")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.published_repeats is None:
        args.published_repeats = args.repeats
    torch.set_num_threads(args.threads)
    heap = keep_heap()  # the extractors set it on first use: set before any of them runs, so all three share it
    rng = np.random.default_rng(args.seed)
    clips = [synthetic_clip(rng, int(n)) for n in rng.integers(40, 201, size=args.clips)]
    frames = sum(len(c) for c in clips)

    published: list[np.ndarray] = []
    t_published = best_time(lambda: published.__setitem__(slice(None), [process_file(c.copy()) for c in clips]),
                            args.published_repeats)
    t_batched = best_time(lambda: extract_features_batch(clips), args.repeats)
    t_looped = best_time(lambda: [extract_features(c) for c in clips], args.repeats)

    ours = extract_features_batch(clips)
    double = [process_file(c.copy(), dtype=torch.float64) for c in clips]
    vs_published = max(float(np.abs(a - b).max()) for a, b in zip(ours, published))
    vs_double = max(float(np.abs(a - b).max()) for a, b in zip(ours, double))
    published_vs_double = max(float(np.abs(a - b).max()) for a, b in zip(published, double))

    print(f"machine: {machine()}, glibc heap kept (motion.core.memory.keep_heap): {heap}")
    print(f"{len(clips)} clips, {frames} frames (40-200 per clip); best of {args.repeats} "
          f"(published code: best of {args.published_repeats})")
    rows = [("published process_file, one clip at a time", t_published),
            ("batched extraction (packed clips)", t_batched),
            ("this project, one clip at a time", t_looped)]
    for name, seconds in rows:
        print(f"{name:45s} {frames / seconds:10.0f} frames/s ({seconds:7.3f} s) "
              f"{t_published / seconds:6.1f}x the published code")
    print(f"batched / per-clip loop: {t_looped / t_batched:.2f}x")
    print(f"max |features - published float32 code|: {vs_published:.2e}; - published code in float64: "
          f"{vs_double:.2e}; published float32 - float64: {published_vs_double:.2e}")


if __name__ == "__main__":
    main()
