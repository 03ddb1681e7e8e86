"""Wall time of `dvc repro` in a fresh copy of the project: the data stages or the whole pipeline (per stage, with
the peak memory of the run), and a no-op rerun. The default pipeline's budget (<= 30 minutes on the 2-core CPU,
quiet machine) is checked with `--target all`.

Run:  python -m benchmarks.bench_repro [--target features|all] [--tiny] [--keep DIR]
"""
from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.workspace import dvc, env_with_venv, make_workspace

STAGE_LINE = re.compile(r"Running stage '([^']+)'")


def timed(*args: str, cwd: Path) -> float:
    """Seconds one DVC command takes."""
    start = time.perf_counter()
    dvc(*args, cwd=cwd, timeout=3600)
    return time.perf_counter() - start


def repro_per_stage(target: list[str], cwd: Path) -> tuple[float, dict[str, float]]:
    """Run `dvc repro` streaming its output: total seconds and seconds per stage (from one "Running stage" line
    to the next)."""
    start = time.perf_counter()
    stages: dict[str, float] = {}
    current, since = None, start
    with subprocess.Popen([sys.executable, "-m", "dvc", "repro", *target], cwd=cwd, env=env_with_venv(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = STAGE_LINE.search(line)
            if match:
                now = time.perf_counter()
                if current:
                    stages[current] = now - since
                current, since = match.group(1), now
                print(f"  {time.strftime('%H:%M:%S')} {current}", flush=True)
        code = proc.wait()
    end = time.perf_counter()
    if current:
        stages[current] = end - since
    if code:
        raise SystemExit(f"bench_repro: dvc repro failed ({code})")
    return end - start, stages


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="features",
                        help="stage to build (default: the data stages); 'all' for everything")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny params instead of the default")
    parser.add_argument("--keep", type=Path, help="build in this (new) folder and keep it")
    args = parser.parse_args()
    target = [] if args.target == "all" else [args.target]
    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(args.keep or Path(tmp) / "ws", tiny=args.tiny)
        build, stages = repro_per_stage(target, ws)
        noop = timed("repro", *target, cwd=ws)
        status = timed("status", cwd=ws)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 ** 2
    for name, seconds in stages.items():
        print(f"  {name:<32} {seconds:7.1f} s")
    groups: dict[str, float] = {}
    for name, seconds in stages.items():
        groups[name.split("@")[0]] = groups.get(name.split("@")[0], 0.0) + seconds
    print("per stage kind: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in groups.items()))
    print(f"dvc repro {args.target or 'all'} from nothing: {build:.1f} s ({build / 60:.1f} min), "
          f"peak RSS of a stage {peak:.2f} GB")
    print(f"dvc repro {args.target or 'all'} again (no-op): {noop:.2f} s")
    print(f"dvc status: {status:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
