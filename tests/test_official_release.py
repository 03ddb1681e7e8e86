"""Importing a whole release (golden LGTM + official-layout TMRs) into load_lgtm / load_tmr folders."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.diffusion import sample
from models.lgtm import load_lgtm
from models.official.fakes import write_small_official_tmr
from models.official.release import import_release
from models.tmr import load_tmr
from motion.core.errors import DataError
from motion.core.parts import TEXT_SLOTS
from motion.core.sampling import SamplingConfig
from tests.support.official import write_official_tmrs
from tests.support.params import write_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def release(golden: Path, tmp_path: Path) -> dict[str, Path]:
    """Official layout: tmr_humanml3d_guoh3dfeats/ + body_part_tmr/<part>/ (256-d fakes: the golden LGTM takes 256)."""
    tmr_dir = write_official_tmrs(tmp_path / "TMR_models", latent_dim=256)
    np.save(tmp_path / "Mean.npy", np.zeros(263, np.float32))
    np.save(tmp_path / "Std.npy", np.ones(263, np.float32))
    return {"checkpoint": next((golden / "lgtm_small").rglob("*.ckpt")), "tmr_dir": tmr_dir,
            "mean": tmp_path / "Mean.npy", "std": tmp_path / "Std.npy", "out": tmp_path / "official"}


@pytest.mark.slow
def test_import_release_loads_everywhere(release: dict[str, Path]) -> None:
    manifest = import_release(release["checkpoint"], release["tmr_dir"], release["mean"], release["std"],
                              release["out"])
    assert set(manifest["tmr"]) == set(TEXT_SLOTS)
    assert json.loads((release["out"] / "manifest.json").read_text())["lgtm"]["forward_max_diff"] == 0.0
    tmrs = {slot: load_tmr(release["out"] / "tmr" / slot) for slot in TEXT_SLOTS}
    model = load_lgtm(release["out"] / "lgtm")
    tokens, mask = torch.randn(1, 7, 768), torch.ones(1, 7, dtype=torch.bool)
    latents = torch.stack([tmrs[s].encode_text(tokens, mask) for s in TEXT_SLOTS], dim=1)
    parts = sample(model, latents, torch.tensor([60]), SamplingConfig("ddim", 2, 0.0, 1.0))
    assert parts["head"].shape == (1, model.cfg.window, 24) and torch.isfinite(parts["torso"]).all()


def test_missing_tmr_folder_and_wrong_latent_width(release: dict[str, Path], tmp_path: Path) -> None:
    shutil.rmtree(release["tmr_dir"] / "body_part_tmr" / "torso")
    with pytest.raises(DataError, match="official TMR folder of torso is missing"):
        import_release(release["checkpoint"], release["tmr_dir"], release["mean"], release["std"], release["out"])
    write_small_official_tmr(release["tmr_dir"] / "body_part_tmr" / "torso", "torso", latent_dim=64)
    with pytest.raises(DataError, match="64-d latents but .* takes 256-d"):
        import_release(release["checkpoint"], release["tmr_dir"], release["mean"], release["std"], release["out"])
    assert not release["out"].exists()


def test_wrong_part_folder_leaves_nothing(release: dict[str, Path]) -> None:
    overrides = {"right_arm": str(release["tmr_dir"] / "body_part_tmr" / "left_arm")}
    with pytest.raises(DataError, match="holds the TMR of left_arm"):
        import_release(release["checkpoint"], release["tmr_dir"], release["mean"], release["std"], release["out"],
                       overrides)
    assert not release["out"].exists()


@pytest.mark.slow
def test_stage_reads_the_official_section(release: dict[str, Path], tmp_path: Path) -> None:
    section = {f"official.{k}": str(v) for k, v in release.items()}
    params = write_params(tmp_path, {**section, "official.text_model": ""})  # the real params.yaml + the release
    env = {**os.environ, "LGTM_PARAMS": str(params)}
    done = subprocess.run([sys.executable, "-m", "stages.import_official"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "7 TMRs verified" in done.stdout and (release["out"] / "lgtm" / "Mean.npy").is_file()
    write_params(tmp_path, {**section, "official.std": ""})
    done = subprocess.run([sys.executable, "-m", "stages.import_official"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode != 0 and "official.std is not set" in done.stderr
