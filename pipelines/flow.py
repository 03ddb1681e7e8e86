"""Prefect flow that rebuilds the DVC pipeline, one Prefect task per DVC stage instance.

Design (DVC cannot run two stages at once in one workspace: "Unable to acquire lock"):
- DVC owns caching. Each task first asks `dvc status <stage>`; an up-to-date stage is skipped.
- Stage commands run concurrently as plain subprocesses (their outputs are written atomically);
  only DVC's own bookkeeping (`dvc status`, `dvc commit`) is serialised under a one-slot Prefect
  global concurrency limit, so after the flow `dvc repro` is a no-op.
- Stages marked `meta: {gpu: true}` in dvc.yaml also hold a slot of the `gpu` limit (one slot per GPU);
  inside, motion.core.device.exclusive_gpu gives each process its own GPU.
- Prefect result caching is off for these tasks: DVC decides what reruns.

Run:  python -m pipelines.flow [--target STAGE ...] [--gpu-slots N]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency

from motion.core.workspace import workspace_lock
from pipelines.dag import StageNode, load_dag

DVC_LIMIT = "dvc-bookkeeping"
GPU_LIMIT = "gpu"
REPO_ROOT = Path(__file__).resolve().parents[1]


def _dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a DVC command in the workspace (same Python environment as the flow)."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)


def ensure_limits(gpu_slots: int) -> None:
    """Create (or resize) the global concurrency limits the flow relies on."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name=DVC_LIMIT, limit=1)
        client.upsert_global_concurrency_limit_by_name(name=GPU_LIMIT, limit=max(1, gpu_slots))


def count_gpus() -> int:
    """GPUs torch can see on this machine (0 without CUDA)."""
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - a broken CUDA install means no GPU for scheduling
        return 0


def stage_is_up_to_date(name: str, cwd: Path) -> bool:
    """Ask DVC whether a stage's deps, params and outs all match dvc.lock."""
    result = _dvc("status", "--json", name, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"dvc status {name} failed: {result.stderr.strip().splitlines()[-1:]}")
    import json

    return json.loads(result.stdout or "{}") == {}


def _stream(cmd: str, cwd: Path, env: dict[str, str], logger, progress_every_s: float = 5.0) -> tuple[int, str]:
    """Run a shell command, sending its output lines to the Prefect log.

    Progress-bar updates (lines ended by a carriage return, as tqdm writes them) are logged at most
    every ``progress_every_s`` seconds. Returns the exit code and the last line printed (a failing
    stage's one-line error)."""
    import time

    proc = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    last, buffer, last_progress = "", b"", 0.0
    while chunk := proc.stdout.read1(4096):
        buffer += chunk
        *pieces, buffer = re.split(rb"(\r\n|\r|\n)", buffer)
        for raw, end in zip(pieces[0::2], pieces[1::2]):
            line = raw.decode(errors="replace").rstrip()
            if not line or line == last:
                continue
            if end == b"\r":
                if time.monotonic() - last_progress < progress_every_s:
                    continue
                last_progress = time.monotonic()
            logger.info(line)
            last = line
    if buffer.strip():
        last = buffer.decode(errors="replace").rstrip()
        logger.info(last)
    return proc.wait(), last


def params_digest(cwd: Path) -> str:
    """SHA-256 of the workspace's params.yaml (what ``dvc commit`` will record for every stage)."""
    import hashlib

    path = cwd / "params.yaml"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def refuse_if_params_file_changed(node: StageNode, cwd: Path, before: str) -> None:
    """Refuse to record a stage whose params.yaml changed while it ran (its outputs come from the old values)."""
    if params_digest(cwd) != before:
        raise RuntimeError(f"params.yaml changed while {node.name} ran: not recorded in dvc.lock (its outputs were "
                           f"made from the old values) -- rerun the flow")


def publish_artifacts(node: StageNode, cwd: Path) -> None:
    """Markdown reports become Prefect markdown artifacts; videos and plots become links."""
    for out in node.outs:
        root = cwd / out
        if not root.is_dir():
            continue
        for report in sorted(root.rglob("*.md")):
            key = re.sub(r"[^a-z0-9-]", "-", f"{node.name}-{report.stem}".lower())[:100]
            create_markdown_artifact(report.read_text(encoding="utf-8"), key=key,
                                     description=str(report.relative_to(cwd)))
        for media in sorted([*root.rglob("*.mp4"), *root.rglob("*.png")])[:50]:
            key = re.sub(r"[^a-z0-9-]", "-", f"{node.name}-{media.stem}".lower())[:100]
            create_link_artifact(media.resolve().as_uri(), link_text=str(media.relative_to(cwd)), key=key)


def run_on_gpu_worker(node: StageNode, cwd: Path, deployment: str, remote_workspace: str) -> str:
    """Scale-out: a `lgtm-gpu` worker runs the stage; DVC's run-cache brings the result back here."""
    from prefect.deployments import run_deployment

    from pipelines.remote_stage import restore_from_run_cache

    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout.strip()
    run = run_deployment(deployment, parameters={"stage": node.name, "rev": rev, "workspace": remote_workspace})
    if not run.state or not run.state.is_completed():
        message = run.state.message if run.state else "no state"
        raise RuntimeError(f"stage {node.name} failed on the GPU worker: {message}")
    with concurrency(DVC_LIMIT, occupy=1):
        restore_from_run_cache(node.name, cwd)
    return "ran remotely"


@task(retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE, log_prints=True)
def run_stage(node: StageNode, workspace: str, gpu_deployment: str | None = None, remote_workspace: str = ".") -> str:
    """Run one DVC stage instance unless DVC says it is up to date; then record it in dvc.lock."""
    logger = get_run_logger()
    cwd = Path(workspace)
    with concurrency(DVC_LIMIT, occupy=1):
        if stage_is_up_to_date(node.name, cwd):
            logger.info("%s is up to date in DVC; skipped", node.name)
            return "skipped"
    if node.gpu and gpu_deployment:
        return run_on_gpu_worker(node, cwd, gpu_deployment, remote_workspace)
    logger.info("running %s: %s", node.name, node.cmd)
    params_before = params_digest(cwd)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if node.gpu:
        with concurrency(GPU_LIMIT, occupy=1):
            code, last_line = _stream(node.cmd, cwd, env, logger)
    else:
        code, last_line = _stream(node.cmd, cwd, env, logger)
    if code != 0:
        raise RuntimeError(f"stage {node.name} failed (exit {code}): {last_line} (outputs and dvc.lock unchanged)")
    with concurrency(DVC_LIMIT, occupy=1):
        refuse_if_params_file_changed(node, cwd, params_before)
        result = _dvc("commit", "--force", node.name, cwd=cwd)
        if result.returncode != 0:
            raise RuntimeError(f"dvc commit {node.name} failed: {result.stderr.strip()}")
    publish_artifacts(node, cwd)
    return "ran"


@flow(name="lgtm-pipeline", log_prints=True)
def rebuild(workspace: str = str(REPO_ROOT), targets: list[str] | None = None, gpu_slots: int | None = None,
            gpu_deployment: str | None = None, remote_workspace: str = ".", wait_s: float = 0.0) -> dict[str, str]:
    """Rebuild the DVC pipeline: stages in dependency order, independent ones concurrently.

    One flow per workspace: the flow holds the workspace lock (``motion.core.workspace``); a second flow
    waits up to ``wait_s`` seconds, then refuses with a message naming the holder.
    With ``gpu_deployment`` (e.g. "lgtm-remote-stage/gpu-stage"), GPU stages run on workers of that
    deployment's pool, in their checkout ``remote_workspace``, sharing this project's DVC remote."""
    with workspace_lock(workspace, "prefect flow lgtm-pipeline", wait_s):
        return _rebuild(workspace, targets, gpu_slots, gpu_deployment, remote_workspace)


def _rebuild(workspace: str, targets: list[str] | None, gpu_slots: int | None, gpu_deployment: str | None,
             remote_workspace: str) -> dict[str, str]:
    logger = get_run_logger()
    ensure_limits(count_gpus() if gpu_slots is None else gpu_slots)
    nodes = load_dag(workspace)
    if targets:
        wanted = _with_upstream(nodes, targets)
        nodes = [n for n in nodes if n.name in wanted]
    futures = {}
    for node in nodes:
        waits = [futures[u] for u in node.upstream if u in futures]
        futures[node.name] = run_stage.with_options(
            task_run_name=f"{node.name}", tags=["gpu"] if node.gpu else []
        ).submit(node, workspace, gpu_deployment, remote_workspace, wait_for=waits)
    results = {name: fut.result() for name, fut in futures.items()}
    logger.info("stages: %s", results)
    return results


def _with_upstream(nodes: list[StageNode], targets: list[str]) -> set[str]:
    """The target stages (a foreach name selects all its items) and everything upstream of them."""
    by_name = {n.name: n for n in nodes}
    todo = [n.name for n in nodes if n.name in targets or n.name.split("@")[0] in targets]
    if not todo:
        raise SystemExit(f"no stage named {targets} in dvc.yaml; stages: {sorted(by_name)}")
    keep: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(by_name[name].upstream)
    return keep


def main() -> None:
    """Command line: run the flow against the configured Prefect API (or an ephemeral one)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", help="stage to build with its upstream (repeatable)")
    parser.add_argument("--gpu-slots", type=int, default=None, help="GPU slots (default: GPUs torch sees)")
    parser.add_argument("--workspace", default=str(REPO_ROOT))
    parser.add_argument("--gpu-deployment", default=None,
                        help="run GPU stages on this deployment's workers (scale-out)")
    parser.add_argument("--remote-workspace", default=".", help="the project checkout on the GPU workers")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="seconds to wait for another flow in this workspace (default: refuse at once)")
    args = parser.parse_args()
    from motion.core.errors import DataError

    try:
        rebuild(workspace=args.workspace, targets=args.target, gpu_slots=args.gpu_slots,
                gpu_deployment=args.gpu_deployment, remote_workspace=args.remote_workspace, wait_s=args.wait)
    except DataError as error:
        sys.exit(f"pipelines.flow: {error}")


if __name__ == "__main__":
    main()
