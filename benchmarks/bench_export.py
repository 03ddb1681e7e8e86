"""Speed of the generation exports: BVH writing (IK + text) and stick-figure mp4 rendering.

Run: ``python -m benchmarks.bench_export [--frames 196] [--panels 1 2]``. Prints frames per second.
The motion is forward kinematics of smooth random rotations with a turning walk (benchmarks.bench_features).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from motion.core.skeleton import JOINT_NAMES
from motion.export.bvh import write_bvh
from motion.export.render import render_video
from tests.oracles.bvh_reader import read_bvh
from tests.support.motions import synthetic_clip


def main() -> None:
    """Time BVH export and video rendering of one synthetic motion; print frames per second."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=196)
    parser.add_argument("--panels", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    joints = synthetic_clip(np.random.default_rng(0), args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_bvh(Path(tmp) / "m.bvh", joints)
        seconds = time.perf_counter() - start
        names, _, _, back = read_bvh(Path(tmp) / "m.bvh")
        err = np.linalg.norm(back[:, [names.index(n) for n in JOINT_NAMES]] - joints, axis=-1)
        print(f"bvh: {args.frames / seconds:.0f} frames/s written, round-trip max error {err.max() * 100:.4f} cm")
        for panels in args.panels:
            start = time.perf_counter()
            frames = render_video(Path(tmp) / f"v{panels}.mp4", [joints] * panels, ["a person walks"] * panels)
            seconds = time.perf_counter() - start
            print(f"render: {panels} panel(s), {frames} frames in {seconds:.2f} s = {frames / seconds:.1f} frames/s")


if __name__ == "__main__":
    main()
