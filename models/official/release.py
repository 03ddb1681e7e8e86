"""Import a whole release: the LGTM checkpoint and its seven TMRs, converted into one verified folder.

Layout written (atomically, all or nothing)::

    <out>/lgtm/   model.safetensors, config.json, Mean.npy, Std.npy      (models.inference.TrainedLGTM.released)
    <out>/tmr/<slot>/ model.safetensors, config.json                      (models.tmr.load_tmr), slot in TEXT_SLOTS
    <out>/manifest.json  sources, sha256s, verification figures

The TMR folders are found under ``tmr_dir`` either as ``<slot>/`` or in the official layout
(``tmr_humanml3d_guoh3dfeats/`` for the whole body, ``body_part_tmr/<part>/`` for the parts); explicit
``tmr_folders`` entries win. Besides each file's own verification, the pairing is checked: every
TMR's latent width must be the LGTM checkpoint's text-latent width.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from models.lgtm import TEXT_SLOTS
from models.official.convert import convert_lgtm, convert_tmr
from models.official.lgtm_ckpt import config_from_checkpoint, read_lightning_checkpoint
from models.official.tmr import WHOLE_BODY, check_part, read_official_config, tmr_config
from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json

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


def import_release(checkpoint: str | Path, tmr_dir: str | Path, mean: str | Path, std: str | Path,
                   out_dir: str | Path, tmr_folders: dict[str, str] | None = None,
                   text_model: str | None = None) -> dict[str, Any]:
    """Convert and verify the LGTM checkpoint and its seven TMRs into ``out_dir``; returns the manifest."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    folders = find_tmr_folders(tmr_dir, tmr_folders)
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
        write_json(tmp / "manifest.json", manifest)
    return manifest
