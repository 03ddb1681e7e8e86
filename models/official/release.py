"""Import a whole release: the LGTM checkpoint and its seven TMRs, converted into one verified folder.

Layout written (atomically, all or nothing)::

    <out>/lgtm/   model.safetensors, config.json, Mean.npy, Std.npy      (models.inference.TrainedLGTM.released)
    <out>/tmr/<slot>/ model.safetensors, config.json                      (models.tmr.load_tmr), slot in TEXT_SLOTS
    <out>/tmr/part_stats.npz  {slot}_mean / {slot}_std the TMR motion encoders' inputs are normalised with
    <out>/manifest.json  sources, sha256s, verification figures

The TMR normalisation: TMR's own per-part statistics (``stats/humanml3d[_<part>]/guoh3dfeats/{mean,std}.pt``)
when ``tmr_stats`` names that folder; otherwise the slices of HumanML3D's Mean/Std, which is what LGTM's
evaluation does (it feeds HumanML3D-normalised features to the TMRs; ``TMR_Wrapper.normalize`` is never called).

The TMR folders are found under ``tmr_dir`` either as ``<slot>/`` or in the official layout
(``tmr_humanml3d_guoh3dfeats/`` for the whole body, ``body_part_tmr/<part>/`` for the parts); explicit
``tmr_folders`` entries win. Besides each file's own verification, the pairing is checked: every
TMR's latent width must be the LGTM checkpoint's text-latent width.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.official.convert import convert_lgtm, convert_tmr, read_statistics
from models.official.lgtm_ckpt import config_from_checkpoint, read_lightning_checkpoint
from models.official.tmr import WHOLE_BODY, check_part, read_official_config, read_tmr_stats, tmr_config
from motion.core.errors import DataError
from motion.core.io import atomic_dir, atomic_path, write_json
from motion.core.parts import PART_INDICES, TEXT_SLOTS
from motion.datasets import PART_STATS_FILE

OFFICIAL_TMR_LAYOUT: dict[str, str] = {WHOLE_BODY: "tmr_humanml3d_guoh3dfeats"}
PART_TMR_DIR = "body_part_tmr"


def find_tmr_folders(tmr_dir: str | Path, overrides: dict[str, str] | None = None) -> dict[str, Path]:
    """Run folder of each of the seven TMRs (TEXT_SLOTS), from ``overrides`` or the known layouts under ``tmr_dir``."""
    root = Path(tmr_dir)
    folders: dict[str, Path] = {}
    for slot in TEXT_SLOTS:
        if overrides and overrides.get(slot):
            candidates = [Path(overrides[slot])]
        else:
            official = root / OFFICIAL_TMR_LAYOUT[slot] if slot == WHOLE_BODY else root / PART_TMR_DIR / slot
            candidates = [root / slot, official]
        found = next((c for c in candidates if (c / "config.json").is_file()), None)
        if found is None:
            raise DataError(candidates[-1], f"official TMR folder of {slot} is missing (also looked in "
                            f"{', '.join(str(c) for c in candidates[:-1]) or 'nowhere else'})",
                            "unzip the TMR models (tmr_humanml3d_guoh3dfeats, body_part_tmr.zip) under the TMR folder")
        folders[slot] = found
    return folders


HUMANML3D_STATS = "HumanML3D Mean/Std slices (as LGTM's evaluation: HumanML3D-normalised features into the TMRs)"


def tmr_part_stats(mean: str | Path, std: str | Path,
                   tmr_stats: str | Path | None) -> tuple[dict[str, np.ndarray], str]:
    """{slot}_mean / {slot}_std of the seven TMR motion encoders' inputs, and what they are (for the manifest)."""
    arrays: dict[str, np.ndarray] = {}
    if tmr_stats:
        for slot in TEXT_SLOTS:
            m, s = read_tmr_stats(tmr_stats, slot)
            arrays[f"{slot}_mean"], arrays[f"{slot}_std"] = m.numpy(), s.numpy()
        return arrays, f"TMR statistics of {Path(tmr_stats).name}/ (humanml3d[_<part>]/guoh3dfeats)"
    full_mean, full_std = read_statistics(mean, std)
    for slot in TEXT_SLOTS:
        dims = slice(None) if slot == WHOLE_BODY else PART_INDICES[slot]
        arrays[f"{slot}_mean"], arrays[f"{slot}_std"] = full_mean[dims], full_std[dims]
    return arrays, HUMANML3D_STATS


def import_release(checkpoint: str | Path, tmr_dir: str | Path, mean: str | Path, std: str | Path,
                   out_dir: str | Path, tmr_folders: dict[str, str] | None = None,
                   text_model: str | None = None, tmr_stats: str | Path | None = None) -> dict[str, Any]:
    """Convert and verify the LGTM checkpoint and its seven TMRs into ``out_dir``; returns the manifest.

    ``tmr_stats``: TMR's stats folder for the TMR motion normalisation (None: HumanML3D's Mean/Std)."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    folders = find_tmr_folders(tmr_dir, tmr_folders)
    stats, stats_kind = tmr_part_stats(mean, std, tmr_stats)
    text_dim = config_from_checkpoint(read_lightning_checkpoint(checkpoint), checkpoint).text_dim
    for slot, folder in folders.items():  # cheap part and pairing checks before any conversion
        config = read_official_config(folder)
        cfg = tmr_config(config, folder / "config.json")
        check_part(config, cfg, slot, folder)
        latent = cfg.latent_dim
        if latent != text_dim:
            raise DataError(folder, f"TMR of {slot} has {latent}-d latents but {checkpoint.name} takes {text_dim}-d "
                            "text latents", "use the TMRs released with this LGTM checkpoint")
    manifest: dict[str, Any] = {"lgtm": {}, "tmr": {}}
    with atomic_dir(out_dir) as tmp:
        manifest["lgtm"] = {"source": str(checkpoint), **convert_lgtm(checkpoint, tmp / "lgtm", mean, std)}
        for slot, folder in folders.items():
            manifest["tmr"][slot] = {"source": str(folder),
                                     **convert_tmr(folder, tmp / "tmr" / slot, slot, text_model)}
        with atomic_path(tmp / "tmr" / PART_STATS_FILE) as path:
            with open(path, "wb") as f:
                np.savez(f, **stats)
        manifest["tmr_normalisation"] = stats_kind
        write_json(tmp / "manifest.json", manifest)
    return manifest
