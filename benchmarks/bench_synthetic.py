"""Speed and size of the synthetic dataset generator (the pipeline's default data source).

Run: ``python -m benchmarks.bench_synthetic [--motions N] [--seed S]`` (default: params.yaml's
``download.synthetic.num_motions`` and ``seed``, as the download stage). Prints wall time, CPU
time, motions per second, 20-fps frames, and the bytes written, and checks that a rerun is
byte-identical.
"""
from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from benchmarks import settings_for
from motion.data.synthetic import generate_dataset


def _digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return sha.hexdigest()


def main() -> None:
    """Generate the dataset twice in temp folders; print timings, sizes and whether the bytes match."""
    parser = argparse.ArgumentParser(description=__doc__)
    settings = settings_for()
    parser.add_argument("--motions", type=int, default=settings.download.synthetic.num_motions)
    parser.add_argument("--seed", type=int, default=settings.seed)
    args = parser.parse_args()
    digests = []
    for run in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            wall, cpu = time.perf_counter(), time.process_time()
            summary = generate_dataset(root / "amass", root / "annotations", args.motions, args.seed)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
            digests.append(_digest(root))
        print(f"run {run}: {summary['motions']} motions, {summary['frames']} frames at 20 fps, "
              f"{summary['actions']} actions, {summary['turns']} with a 180-degree turn; "
              f"wall {wall:.1f} s, cpu {cpu:.1f} s, {summary['motions'] / wall:.0f} motions/s, {size / 1e6:.1f} MB")
    print(f"byte-identical rerun: {digests[0] == digests[1]}")


if __name__ == "__main__":
    main()
