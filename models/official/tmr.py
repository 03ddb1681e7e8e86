"""Official TMR run folders as ``models.tmr.TMR``.

A run folder holds ``config.json`` + ``last_weights/{text_encoder,motion_encoder,motion_decoder}.pt``.

The official ``config.json`` is the resolved hydra config of TMR's ``train.py`` (``model.text_encoder``,
``model.motion_encoder``, ``model.motion_decoder`` with ``nfeats``, ``latent_dim``, ``ff_size``,
``num_layers``, ``num_heads``, ``dropout``, ``activation``); the three ``.pt`` files are plain tensor
dicts written by TMR's ``extract.py``. The architecture equals the project's TMR (ACTOR-style
encoders with two distribution tokens, a transformer decoder on positional queries), so loading
is a key mapping: ``seqTransEncoder``/``seqTransDecoder`` -> ``transformer``, ``final_layer`` -> ``final``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.official.lgtm_ckpt import safe_torch_load
from models.tmr import TMR, TMRConfig
from motion.core.errors import DataError
from motion.core.parts import FEATURE_DIM, PART_DIMS, PART_NAMES

WEIGHT_FILES = ("text_encoder", "motion_encoder", "motion_decoder")
WHOLE_BODY = "whole_body"
_FIX = "unzip the official TMR models (tmr_humanml3d_guoh3dfeats, body_part_tmr.zip) and point to the run folder"
_RULES: tuple[tuple[str, str], ...] = (
    (r"seqTransEncoder\.(.+)", r"transformer.\1"),
    (r"seqTransDecoder\.(.+)", r"transformer.\1"),
    (r"final_layer\.(.+)", r"final.\1"),
    (r"(tokens|projection\..+)", r"\1"),
)


def expected_motion_dim(part: str) -> int:
    """Feature width of a TMR for ``part`` ('whole_body' or one of PART_NAMES)."""
    return FEATURE_DIM if part == WHOLE_BODY else PART_DIMS[part]


def read_official_config(folder: str | Path) -> dict[str, Any]:
    """The resolved ``config.json`` of an official TMR run folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "official TMR folder is missing", _FIX)
    path = folder / "config.json"
    if not path.is_file():
        raise DataError(path, "official TMR config.json is missing", _FIX)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(path, f"is not valid JSON ({error.msg})", _FIX) from None
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict) or not all(isinstance(model.get(k), dict) for k in WEIGHT_FILES):
        raise DataError(path, "is not an official TMR config (no model.text_encoder/motion_encoder/motion_decoder)",
                        _FIX)
    return config


def config_part(config: dict[str, Any]) -> str | None:
    """The body part a TMR config was trained on, from its data paths (None: no part named, i.e. whole body)."""
    data = config.get("data", {})
    texts = [str(data.get("path", "")), str(data.get("motion_loader", {}).get("base_dir", "")),
             str(config.get("run_dir", ""))]
    for text in texts:
        for part in PART_NAMES:
            if re.search(rf"(^|[/_]){part}($|[/_])", text):
                return part
    return None


def tmr_config(config: dict[str, Any], path: Path) -> TMRConfig:
    """Project TMRConfig from an official config (encoders and decoder must agree on the latent sizes)."""
    model = config["model"]
    enc, text, dec = model["motion_encoder"], model["text_encoder"], model["motion_decoder"]
    shared = ("latent_dim", "ff_size", "num_layers", "num_heads", "activation")
    for key in shared:
        if not enc.get(key) == text.get(key) == dec.get(key):
            raise DataError(path, f"model.*.{key} differs between the encoders and the decoder", _FIX)
    lmd = model.get("lmd", {})
    return TMRConfig(motion_dim=int(enc["nfeats"]), token_dim=int(text["nfeats"]), latent_dim=int(enc["latent_dim"]),
                     ff_size=int(enc["ff_size"]), num_layers=int(enc["num_layers"]), num_heads=int(enc["num_heads"]),
                     dropout=float(enc.get("dropout", 0.1)), activation=str(enc.get("activation", "gelu")),
                     lambda_recons=float(lmd.get("recons", 1.0)), lambda_kl=float(lmd.get("kl", 1e-5)),
                     lambda_latent=float(lmd.get("latent", 1e-5)),
                     lambda_contrastive=float(lmd.get("contrastive", 0.1)),
                     temperature=float(model.get("temperature", 0.1)),
                     threshold_selfsim=float(model.get("threshold_selfsim", 0.8)))


def _read_weights(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise DataError(path, "official TMR weights are missing",
                        _FIX + " (run TMR's extract.py if only the .ckpt exists)")
    state = safe_torch_load(path, _FIX)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise DataError(path, "is not a plain tensor dict as written by TMR's extract.py", _FIX)
    return state


def convert_weights(folder: Path, model: TMR) -> dict[str, Tensor]:
    """The three official weight files mapped onto ``model``'s state_dict, with full coverage and shape checks."""
    expected = model.state_dict()
    out: dict[str, Tensor] = {}
    for module in WEIGHT_FILES:
        path = folder / "last_weights" / f"{module}.pt"
        for key, value in _read_weights(path).items():
            target = next((f"{module}.{re.sub(p, t, key)}" for p, t in _RULES if re.fullmatch(p, key)), None)
            if target is None or target not in expected:
                raise DataError(path, f"unexpected key {key!r}: not an official TMR {module}", _FIX)
            if tuple(value.shape) != tuple(expected[target].shape):
                raise DataError(path, f"{key!r} has shape {tuple(value.shape)} but config.json gives "
                                f"{tuple(expected[target].shape)}", "use the config.json of the same run")
            out[target] = value.float()
    missing = [k for k in expected if k not in out]
    if missing:
        raise DataError(folder / "last_weights", f"{len(missing)} TMR weights are missing, e.g. {missing[0]!r}", _FIX)
    return out


def check_part(config: dict[str, Any], cfg: TMRConfig, part: str, folder: Path) -> None:
    """The run folder must hold ``part``'s TMR: the part its data paths name and that part's feature width."""
    named = config_part(config)
    want = expected_motion_dim(part)
    if cfg.motion_dim != want or (named is not None and named != part) or (named is None and part != WHOLE_BODY):
        raise DataError(folder, f"holds the TMR of {named or WHOLE_BODY} ({cfg.motion_dim} features), "
                        f"not of {part} ({want} features)", f"point {part} at its own TMR folder")


def load_official_tmr(folder: str | Path, part: str | None = None, device: str | torch.device = "cpu") -> TMR:
    """Load an official TMR run folder in eval mode.

    ``part`` ('whole_body' or a part name) checks that the folder holds that part's model.
    """
    folder = Path(folder)
    config = read_official_config(folder)
    cfg = tmr_config(config, folder / "config.json")
    if part is not None:
        check_part(config, cfg, part, folder)
    model = TMR(cfg)
    state = convert_weights(folder, model)
    model.load_state_dict(state)
    return model.to(device).eval()


# ----------------------------------------------------------------------------- the TMR motion normalisation

STATS_FILES = ("mean.pt", "std.pt")
_STATS_FIX = ("point official.tmr_stats at TMR's stats/ folder (humanml3d/guoh3dfeats/, "
              "humanml3d_<part>/guoh3dfeats/), "
              "or leave it empty for HumanML3D's Mean/Std")


def stats_folder(stats_dir: str | Path, part: str) -> Path:
    """Where TMR keeps the per-dimension motion statistics of ``part`` (``prepare/motion_stats.py``'s layout)."""
    name = "humanml3d" if part == WHOLE_BODY else f"humanml3d_{part}"
    return Path(stats_dir) / name / "guoh3dfeats"


def read_tmr_stats(stats_dir: str | Path, part: str) -> tuple[Tensor, Tensor]:
    """(mean, std) float32 of the features ``part``'s TMR motion encoder was trained on, checked (one-line errors)."""
    folder = stats_folder(stats_dir, part)
    want = expected_motion_dim(part)
    out = []
    for name in STATS_FILES:
        path = folder / name
        if not path.is_file():
            raise DataError(path, f"TMR motion statistics of {part} are missing", _STATS_FIX)
        value = safe_torch_load(path, _STATS_FIX)
        if not isinstance(value, Tensor) or tuple(value.shape) != (want,) or not bool(torch.isfinite(value).all()):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise DataError(path, f"must be a tensor of {want} finite values (the {part} features), got {shape}",
                            _STATS_FIX)
        out.append(value.float())
    if bool((out[1] < 0).any()):
        raise DataError(folder / STATS_FILES[1], "has negative entries", _STATS_FIX)
    return out[0], out[1]
