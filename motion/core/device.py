"""Choosing the torch device, and holding a GPU exclusively while a stage uses it.

Prefect bounds how many GPU stages run at once; the per-GPU lock files below make sure two
processes (two Prefect tasks, or a Prefect task and a `dvc queue` worker) never share one GPU.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOCK_DIR = Path(os.environ.get("LGTM_GPU_LOCK_DIR", Path(tempfile.gettempdir()) / "lgtm-gpu-locks"))


def resolve_device(name: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible else 'cpu'; 'cpu'/'cuda'/'cuda:N' pass through."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but torch sees no GPU "
                           "-- set device: auto or cpu in params.yaml")
    return name


@contextlib.contextmanager
def exclusive_gpu(device: str) -> Iterator[str]:
    """Hold one free GPU for the duration of the block; yields the device string to use.

    On the CPU this does nothing. With several GPUs it takes the first one whose lock file is free
    (waiting when all are busy) and yields 'cuda:<i>'.
    """
    if not device.startswith("cuda"):
        yield device
        return
    import torch

    count = torch.cuda.device_count()
    candidates = [int(device.split(":")[1])] if ":" in device else list(range(count))
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    while True:
        for index in candidates:
            handle = open(LOCK_DIR / f"gpu{index}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield f"cuda:{index}"
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        # every GPU is held by another process: block on the first one until it frees up
        with open(LOCK_DIR / f"gpu{candidates[0]}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            fcntl.flock(handle, fcntl.LOCK_UN)


_HELD = contextlib.ExitStack()


def claim_gpu(device: str) -> str:
    """Like exclusive_gpu, but hold the GPU until this process exits (for a stage's whole run)."""
    return _HELD.enter_context(exclusive_gpu(device))
