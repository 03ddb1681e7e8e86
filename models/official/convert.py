"""Convert released files to the project's own format (safetensors + config.json), verified and atomic.

LGTM: the official ``.ckpt`` plus HumanML3D's published ``Mean.npy``/``Std.npy`` become a folder that
``models.lgtm.load_lgtm`` reads (``model.safetensors``, ``config.json`` with the official
compatibility options in ``model`` and the provenance in ``source``, ``Mean.npy``/``Std.npy`` under
HumanML3D's names, so the folder is also the normalisation folder ``models.inference`` reads).
TMR: an official run folder becomes a folder that ``models.tmr.load_tmr`` reads.

Verification before anything is published: key coverage and shapes (every official tensor maps
to exactly one of ours and every one of ours is filled), then a forward pass on a fixed input by
the model reloaded from the written files, which must equal the model built from the official
file exactly. Everything is written into a temporary folder renamed at the end, so a failure
leaves nothing half converted.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from models.lgtm import LGTM, OFFICIAL_OPTIONS, count_parameters
from models.official.lgtm_ckpt import load_official_lgtm, read_lightning_checkpoint
from models.official.tmr import load_official_tmr
from models.tmr import TMR, load_tmr, save_tmr
from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json
from motion.core.parts import FEATURE_DIM, PART_DIMS, PART_NAMES, TEXT_SLOTS

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATS_FILES = ("Mean.npy", "Std.npy")
_STATS_FIX = "pass HumanML3D's published Mean.npy and Std.npy (HumanML3D/Mean.npy, HumanML3D/Std.npy)"


def sha256(path: Path) -> str:
    """Hex sha256 of a file (``motion.core.io.sha256_file``)."""
    from motion.core.io import sha256_file

    return sha256_file(path)


def read_statistics(mean_path: str | Path, std_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D's Mean/Std (263,) float32, checked (present, right shape, finite, std > 0)."""
    arrays = []
    for path in (Path(mean_path), Path(std_path)):
        if not path.is_file():
            raise DataError(path, "HumanML3D normalisation file is missing", _STATS_FIX)
        try:
            array = np.load(path, allow_pickle=False).astype(np.float32)
        except (ValueError, OSError) as error:
            raise DataError(path, f"is not a readable .npy ({type(error).__name__})", _STATS_FIX) from None
        if array.shape != (FEATURE_DIM,) or not np.isfinite(array).all():
            raise DataError(path, f"must be {FEATURE_DIM} finite values, got shape {array.shape}", _STATS_FIX)
        arrays.append(array)
    if (arrays[1] <= 0).any():
        raise DataError(std_path, "has non-positive entries", _STATS_FIX)
    return arrays[0], arrays[1]


def fixed_lgtm_input(model: LGTM, batch: int = 2,
                     seed: int = 0) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed (seeded) denoiser input: x_t per part, timesteps, text latents (TEXT_SLOTS order), a frame mask."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    x_t = {p: torch.randn(batch, cfg.window, PART_DIMS[p], generator=g) for p in PART_NAMES}
    timesteps = torch.linspace(999, 0, batch).long()
    latents = torch.randn(batch, len(TEXT_SLOTS), cfg.text_dim, generator=g)
    lengths = torch.linspace(cfg.window, max(1, cfg.window // 3), batch).long()
    mask = torch.arange(cfg.window)[None] < lengths[:, None]
    return x_t, timesteps, latents, mask


@torch.no_grad()
def lgtm_forward_difference(a: LGTM, b: LGTM) -> float:
    """Max |difference| of two denoisers on the fixed input (all frames, all parts)."""
    x_t, t, latents, mask = fixed_lgtm_input(a)
    out_a, out_b = a(x_t, t, latents, mask), b(x_t, t, latents, mask)
    return max(float((out_a[p] - out_b[p]).abs().max()) for p in PART_NAMES)


def convert_lgtm(checkpoint: str | Path, out_dir: str | Path, mean_path: str | Path,
                 std_path: str | Path) -> dict[str, Any]:
    """Official LGTM .ckpt + Mean/Std -> ``out_dir`` in the project's format; returns the verification report."""
    from models.lgtm import load_lgtm

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    mean, std = read_statistics(mean_path, std_path)
    raw = read_lightning_checkpoint(checkpoint)
    model = load_official_lgtm(checkpoint)
    official_keys = len(raw["state_dict"])
    report = {"keys": official_keys, "parameters": count_parameters(model), "config": model.cfg.to_dict()}
    with atomic_dir(out_dir) as tmp:
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / MODEL_FILE))
        np.save(tmp / STATS_FILES[0], mean)
        np.save(tmp / STATS_FILES[1], std)
        source = {"format": "official-lightning-ckpt", "file": checkpoint.name, "sha256": sha256(checkpoint),
                  "epoch": raw.get("epoch"), "global_step": raw.get("global_step"),
                  "official_options": {k: getattr(model.cfg, k) for k in OFFICIAL_OPTIONS + ("conv_norm",)},
                  "normalisation": "HumanML3D Mean/Std (Mean.npy, Std.npy)"}
        write_json(tmp / CONFIG_FILE, {"model": model.cfg.to_dict(), "source": source})
        reloaded = load_lgtm(tmp)
        report["forward_max_diff"] = lgtm_forward_difference(model, reloaded)
        if report["forward_max_diff"] != 0.0:
            raise DataError(checkpoint,
                            f"converted model differs from the checkpoint by {report['forward_max_diff']:.3e}"
                            " on the fixed input", "report this as a converter bug")
    return report


def verify_lgtm_folder(folder: str | Path, checkpoint: str | Path) -> float:
    """Max |difference| between a converted folder and its official checkpoint on the fixed input."""
    from models.lgtm import load_lgtm

    return lgtm_forward_difference(load_lgtm(folder), load_official_lgtm(checkpoint))


@torch.no_grad()
def tmr_forward_difference(a: TMR, b: TMR, seed: int = 0) -> float:
    """Max |difference| of two TMRs' text/motion latents and decoded motion on a fixed input."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(2, 12, a.cfg.token_dim, generator=g)
    motion = torch.randn(2, 40, a.cfg.motion_dim, generator=g)
    token_mask = torch.arange(12)[None] < torch.tensor([[12], [5]])
    mask = torch.arange(40)[None] < torch.tensor([[40], [17]])
    diffs = []
    for enc, x, m in (("text_encoder", tokens, token_mask), ("motion_encoder", motion, mask)):
        for u, v in zip(getattr(a, enc)(x, m), getattr(b, enc)(x, m)):
            diffs.append(float((u - v).abs().max()))
    z = a.encode_motion(motion, mask)
    diffs.append(float((a.motion_decoder(z, mask) - b.motion_decoder(z, mask)).abs().max()))
    return max(diffs)


def check_text_model(name: str, token_dim: int) -> None:
    """The official TMR text encoders read ``name``'s (DistilBERT's) token features: it must be in the local cache."""
    from motion.text.embeddings import HFEncoder

    encoder = HFEncoder("distilbert", name, name)
    if encoder.token_dim != token_dim:
        raise DataError(name, f"gives {encoder.token_dim}-d token features, the TMR text encoder reads {token_dim}",
                        "use distilbert-base-uncased, the text model the official TMRs were trained on")


def convert_tmr(folder: str | Path, out_dir: str | Path, part: str,
                text_model: str | None = None) -> dict[str, Any]:
    """Official TMR run folder of ``part`` -> ``out_dir`` (model.safetensors + config.json), verified, atomic.

    ``text_model`` (e.g. ``distilbert-base-uncased``): also check that the text model whose token
    features the TMR reads is in the local Hugging Face cache.
    """
    folder, out_dir = Path(folder), Path(out_dir)
    model = load_official_tmr(folder, part)
    if text_model:
        check_text_model(text_model, model.cfg.token_dim)
    report = {"part": part, "motion_dim": model.cfg.motion_dim, "latent_dim": model.cfg.latent_dim}
    with atomic_dir(out_dir) as tmp:
        save_tmr(model, tmp, {"source": {"format": "official-tmr-run", "folder": folder.name, "part": part,
                                         "config_sha256": sha256(folder / "config.json")}})
        report["forward_max_diff"] = tmr_forward_difference(model, load_tmr(tmp))
        if report["forward_max_diff"] != 0.0:
            raise DataError(folder, f"converted TMR differs by {report['forward_max_diff']:.3e} on the fixed input",
                            "report this as a converter bug")
    return report


def verify_tmr_folder(folder: str | Path, source: str | Path) -> float:
    """Max |difference| between a converted TMR folder and its official run folder on the fixed input."""
    converted = load_tmr(folder)
    part = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))["source"]["part"]
    return tmr_forward_difference(converted, load_official_tmr(source, part))
