"""Speed of the HumanML3D feature extraction: batched (packed clips) vs one clip at a time.

Run: ``python -m benchmarks.bench_features [--clips 500] [--repeats 3]``. Prints frames per second.
The clips are forward kinematics of smooth random rotations, 40-200 frames each; the foot-contact
threshold and root-wrap fix are params.yaml's ``features`` settings, as in the features stage.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks import settings_for
from motion.data.features import extract_features, extract_features_batch
from tests.support.motions import synthetic_clip


def main() -> None:
    """Time both extractors on the same synthetic clips and print frames/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    section = settings_for().features
    options = {"feet_threshold": section.feet_threshold, "fix_wrap": section.fix_root_wrap}
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

    batched = best(lambda: extract_features_batch(clips, **options))
    looped = best(lambda: [extract_features(c, **options) for c in clips])
    print(f"{len(clips)} clips, {frames} frames (40-200 per clip), best of {args.repeats}")
    print(f"batched extraction:      {frames / batched:10.0f} frames/s ({batched:.3f} s)")
    print(f"one clip at a time:      {frames / looped:10.0f} frames/s ({looped:.3f} s)")


if __name__ == "__main__":
    main()
