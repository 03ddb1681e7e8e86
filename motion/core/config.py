"""Reading ``params.yaml``: every stage takes its settings from there (DVC tracks them)."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import yaml

PARAMS_FILE = Path("params.yaml")


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """Load the params file (``$LGTM_PARAMS`` or ``params.yaml`` in the working folder)."""
    path = Path(path or os.environ.get("LGTM_PARAMS", PARAMS_FILE))
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when installed) torch for deterministic reruns."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
