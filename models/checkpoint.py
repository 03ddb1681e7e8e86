"""Saved models and resumable training checkpoints (safetensors), shared by the TMR and LGTM trainers.

A checkpoint is one safetensors file: the model weights (``model.*``), the optimiser moments
(``optim.<param index>.<name>``), any extra tensors of the trainer (e.g. RNG states) and, as JSON in the
metadata, the optimiser's param groups plus the trainer's progress (step or epoch, losses, the
fingerprint of the run it belongs to). A checkpoint is only resumed when its fingerprint matches.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from motion.core.io import atomic_path

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MODEL_PREFIX, OPTIM_PREFIX = "model.", "optim."


def fingerprint(setup: dict[str, Any]) -> str:
    """SHA-256 of what determines a training trajectory (JSON, sorted keys): a checkpoint resumes only on a match."""
    return hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()


def save_model(model: nn.Module, path: str | Path) -> None:
    """Model weights as safetensors, atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def save_training_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any],
                        extra: dict[str, torch.Tensor] | None = None) -> None:
    """Weights, optimiser moments and ``extra`` tensors, with ``meta`` + the param groups as JSON, atomically."""
    tensors = {f"{MODEL_PREFIX}{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"{OPTIM_PREFIX}{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors.update(extra or {})
    info = {**meta, "param_groups": opt["param_groups"]}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"json": json.dumps(info)})


def checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint written by ``save_training_state`` (without reading the tensors)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return json.loads((f.metadata() or {}).get("json", "{}"))


def load_training_state(path: str | Path, model: nn.Module,
                        optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore weights and optimiser from a checkpoint; returns (its metadata, its extra tensors)."""
    meta = checkpoint_meta(path)
    tensors = load_file(str(path))
    model.load_state_dict({k[len(MODEL_PREFIX):]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith(OPTIM_PREFIX):
            _, index, name = k.split(".", 2)
            state.setdefault(int(index), {})[name] = v
    groups = meta.pop("param_groups")
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})  # moves the moments to the params' device
    extra = {k: v for k, v in tensors.items() if not k.startswith((MODEL_PREFIX, OPTIM_PREFIX))}
    return meta, extra
