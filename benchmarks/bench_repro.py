"""Wall time of `dvc repro` in a fresh copy of the project: the data stages, the whole pipeline, and a no-op rerun.

Run:  python -m benchmarks.bench_repro [--target features] [--tiny]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.support.workspace import dvc, make_workspace


def timed(*args: str, cwd: Path) -> float:
    """Seconds one DVC command takes."""
    start = time.perf_counter()
    dvc(*args, cwd=cwd, timeout=3600)
    return time.perf_counter() - start


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="features",
                        help="stage to build (default: the data stages); 'all' for everything")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny params instead of the default")
    args = parser.parse_args()
    target = [] if args.target == "all" else [args.target]
    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(Path(tmp) / "ws", tiny=args.tiny)
        build = timed("repro", *target, cwd=ws)
        noop = timed("repro", *target, cwd=ws)
        status = timed("status", cwd=ws)
    print(f"dvc repro {args.target or 'all'} from nothing: {build:.1f} s")
    print(f"dvc repro {args.target or 'all'} again (no-op): {noop:.2f} s")
    print(f"dvc status: {status:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
