"""Scale-out: run one DVC stage on another machine (a GPU worker) that shares the DVC remote.

No scheduler of our own: Prefect routes the flow run to a worker of the `lgtm-gpu` work pool, and
DVC's run-cache carries the result back. The worker checks out the same git revision, pulls the
stage's inputs, runs `dvc repro --single-item <stage>` and pushes outputs plus the run-cache.
The main workspace then runs `dvc repro --pull`, which restores the stage from the run-cache without running it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger


def _run(cmd: list[str], cwd: Path) -> str:
    """Run a command and fail with the last line of its error output."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {' '.join(tail)}")
    return result.stdout


def dvc(*args: str, cwd: Path) -> str:
    """Run DVC from this environment."""
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def run_stage_here(stage: str, rev: str | None, workspace: str | Path, wait_s: float = 24 * 3600.0) -> str:
    """On the worker: check out ``rev``, pull inputs, run the stage, push outputs and run-cache.

    Runs of one worker checkout take turns (the workspace lock): a checkout in the middle of another run
    would change its code under it."""
    from motion.core.workspace import workspace_lock

    with workspace_lock(workspace, f"remote stage {stage}", wait_s):
        return _run_stage_here(stage, rev, Path(workspace))


def _run_stage_here(stage: str, rev: str | None, cwd: Path) -> str:
    if rev:
        _run(["git", "fetch", "--quiet", "--all"], cwd) if _has_remote(cwd) else None
        _run(["git", "checkout", "--quiet", "--detach", rev], cwd)
    dvc("pull", "--allow-missing", "--with-deps", stage, cwd=cwd)
    out = dvc("repro", "--single-item", stage, cwd=cwd)
    dvc("push", "--run-cache", stage, cwd=cwd)
    return out


def restore_from_run_cache(stage: str, workspace: str | Path) -> str:
    """On the main workspace: DVC pulls the run-cache and outputs and restores the stage without running it."""
    return dvc("repro", "--pull", "--single-item", stage, cwd=Path(workspace))


def _has_remote(cwd: Path) -> bool:
    return bool(_run(["git", "remote"], cwd).strip())


@flow(name="lgtm-remote-stage", log_prints=True)
def run_remote_stage(stage: str, rev: str | None = None, workspace: str = ".") -> str:
    """Prefect entry point for GPU workers (deployment `gpu-stage` in prefect.yaml)."""
    logger = get_run_logger()
    logger.info("running %s at %s in %s", stage, rev or "HEAD", workspace)
    out = run_stage_here(stage, rev, workspace)
    logger.info(out)
    return out
