"""Official-compatible LGTM: the released-format checkpoint loads through the real import path and
reproduces the official denoiser and DDIM sampler (goldens from the published code)."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from models.lgtm import LGTM, OFFICIAL_OPTIONS, LGTMConfig
from models.official.lgtm_ckpt import (
    config_from_checkpoint,
    load_official_lgtm,
    read_lightning_checkpoint,
)
from motion.core.errors import DataError
from motion.core.parts import PART_NAMES
from tools.official_parity import LGTM_TOL, lgtm_checks, text_latents_in_our_order


def checkpoint_of(golden: Path) -> Path:
    return next((golden / "lgtm_small").rglob("*.ckpt"))


def test_default_config_records_no_official_options() -> None:
    values = LGTMConfig().to_dict()
    assert not set(OFFICIAL_OPTIONS) & set(values)
    official = dataclasses.replace(LGTMConfig(), ff_hidden=2, ff_shared=True, mask_padding=False, part_order="official")
    assert LGTMConfig.from_dict(official.to_dict()) == official


def test_official_options_build_the_official_modules() -> None:
    cfg = LGTMConfig(dim=8, conformer_blocks=1, attention_layers=1, heads=2, window=16, smoothnet_hidden=8,
                     smoothnet_res_hidden=4, smoothnet_blocks=1, optimizer_ff=16, text_dim=4, conv_norm="batch",
                     ff_hidden=2, ff_shared=True, mask_padding=False, part_order="official")
    model = LGTM(cfg)
    block = model.part_encoders["head"].blocks[0]
    assert block.ff_out is None and block.ff_in.net[1].out_features == 2
    assert isinstance(block.conv.conv_norm, torch.nn.BatchNorm1d)
    assert model.stream_order == tuple(sorted(PART_NAMES))
    with pytest.raises(ValueError):
        LGTM(dataclasses.replace(cfg, part_order="random"))


def test_checkpoint_config_is_read_from_the_file(golden: Path) -> None:
    path = checkpoint_of(golden)
    cfg = config_from_checkpoint(read_lightning_checkpoint(path), path)
    hp = read_lightning_checkpoint(path)["hyper_parameters"]
    assert (cfg.dim, cfg.conformer_blocks, cfg.attention_layers, cfg.heads, cfg.window) == (
        hp["latent_dim"], hp["num_conformer_blocks"], hp["num_attention_layers"], hp["num_heads"], hp["max_frames"])
    assert (cfg.ff_hidden, cfg.ff_shared, cfg.mask_padding, cfg.part_order, cfg.conv_norm) == (
        2, True, False, "official", "batch")


def test_denoiser_matches_official_on_every_frame(golden: Path) -> None:
    checks = list(lgtm_checks(golden, "lgtm_small", ddim=False))
    assert checks and all(c.ok for c in checks), [c.line() for c in checks]
    assert max(c.error for c in checks) <= LGTM_TOL


def test_each_official_behaviour_matters(golden: Path) -> None:
    """Switching any official behaviour off moves the valid-frame outputs far beyond the tolerance."""
    model = load_official_lgtm(checkpoint_of(golden))
    io = np.load(golden / "lgtm_small_io.npz")
    args = ({p: torch.from_numpy(io[f"x_t_{p}"]) for p in PART_NAMES}, torch.from_numpy(io["timesteps"]),
            text_latents_in_our_order(io), torch.from_numpy(io["mask"]))
    mask = io["mask"]

    def valid_change(variant: LGTM) -> float:
        with torch.no_grad():
            out = variant(*args)
        return max(float(np.abs(out[p].numpy() - io[f"x0_{p}"])[mask].max()) for p in PART_NAMES)

    assert valid_change(model) <= LGTM_TOL
    for change in ({"part_order": "canonical"}, {"mask_padding": True}):
        variant = LGTM(dataclasses.replace(model.cfg, **change))
        variant.load_state_dict(model.state_dict())
        assert valid_change(variant.eval()) > 100 * LGTM_TOL, change


def test_ddim_10_steps_from_stored_noise(golden: Path) -> None:
    checks = list(lgtm_checks(golden, "lgtm_small", ddim_steps=(10,)))
    ddim = [c for c in checks if "DDIM" in c.name]
    assert any("10 steps: final" in c.name for c in ddim) and any("scheduler config" in c.name for c in ddim)
    assert all(c.ok for c in checks), [c.line() for c in checks]


@pytest.mark.slow
def test_ddim_50_steps_from_stored_noise(golden: Path) -> None:
    checks = [c for c in lgtm_checks(golden, "lgtm_small", ddim_steps=(50,)) if "50 steps" in c.name]
    assert len(checks) == 2 and all(c.ok for c in checks), [c.line() for c in checks]


# ----------------------------------------------------------------------------- bad input

def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="LGTM checkpoint is missing"):
        read_lightning_checkpoint(tmp_path / "none.ckpt")


def test_not_a_lightning_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(DataError, match="not a PyTorch Lightning checkpoint") as info:
        read_lightning_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(DataError, match="not a readable torch checkpoint"):
        read_lightning_checkpoint(text)


def test_disallowed_pickled_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"ns": argparse.Namespace(a=1)}}, path)
    with pytest.raises(DataError, match="Namespace, which is not allowed"):
        read_lightning_checkpoint(path)


def test_truncated_checkpoint(golden: Path, tmp_path: Path) -> None:
    data = checkpoint_of(golden).read_bytes()
    path = tmp_path / "cut.ckpt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_lightning_checkpoint(path)


def test_checkpoint_of_another_config(golden: Path, tmp_path: Path) -> None:
    source = checkpoint_of(golden)
    checkpoint = read_lightning_checkpoint(source)
    checkpoint["hyper_parameters"]["num_heads"] = 4  # would change nothing: heads do not change shapes
    checkpoint["hyper_parameters"]["max_frames"] = 120
    path = tmp_path / "other.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(DataError, match="has shape .* another config"):
        load_official_lgtm(path)
