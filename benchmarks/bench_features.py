"""Speed of the HumanML3D feature extraction: batched (packed clips) vs one clip at a time.

Run: ``python -m benchmarks.bench_features [--clips 500] [--repeats 3]``. Prints frames per second.
The clips are forward kinematics of smooth random rotations, 40-200 frames each.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from motion.data.features import extract_features, extract_features_batch
from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics


def synthetic_clip(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Joints (frames, 22, 3) of a smooth random motion: sinusoidal joint angles, turning walk."""
    t = np.arange(frames)[:, None, None] / 20.0
    freq = rng.uniform(0.2, 1.5, size=(1, 22, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 22, 3))
    amplitude = rng.uniform(0.0, 0.5, size=(1, 22, 3))
    axis_angle = amplitude * np.sin(2 * np.pi * freq * t + phase)
    turn = rng.uniform(-1.0, 1.0) * t[:, 0, 0]
    axis_angle[:, 0] = [0.0, 1.0, 0.0] * turn[:, None]  # the root turns about +y
    speed = rng.uniform(0.0, 1.5)
    heading = np.stack([np.sin(turn), np.zeros_like(turn), np.cos(turn)], axis=-1)
    translation = np.cumsum(heading * speed / 20.0, axis=0) + [0.0, 0.95, 0.0]
    return forward_kinematics(axis_angle_to_matrix(axis_angle), translation).astype(np.float32)


def main() -> None:
    """Time both extractors on the same synthetic clips and print frames/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    clips = [synthetic_clip(rng, int(n)) for n in rng.integers(40, 201, size=args.clips)]
    frames = sum(len(c) for c in clips)

    def best(fn) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    batched = best(lambda: extract_features_batch(clips))
    looped = best(lambda: [extract_features(c) for c in clips])
    print(f"{len(clips)} clips, {frames} frames (40-200 per clip), best of {args.repeats}")
    print(f"batched extraction:      {frames / batched:10.0f} frames/s ({batched:.3f} s)")
    print(f"one clip at a time:      {frames / looped:10.0f} frames/s ({looped:.3f} s)")


if __name__ == "__main__":
    main()
