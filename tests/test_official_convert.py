"""Converter (official -> safetensors + config.json): verified, atomic, one-line errors; paper-size fakes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.lgtm import load_lgtm
from models.official.convert import (
    convert_lgtm,
    convert_tmr,
    lgtm_forward_difference,
    verify_tmr_folder,
)
from models.official.fakes import write_fake_lgtm_checkpoint, write_fake_tmr_folder
from models.official.lgtm_ckpt import load_official_lgtm
from models.tmr import load_tmr
from motion.core.errors import DataError
from tools import convert_official


@pytest.fixture
def stats(tmp_path: Path) -> tuple[Path, Path]:
    mean, std = tmp_path / "Mean.npy", tmp_path / "Std.npy"
    np.save(mean, np.linspace(-1, 1, 263).astype(np.float32))
    np.save(std, np.linspace(0.5, 2, 263).astype(np.float32))
    return mean, std


def checkpoint_of(golden: Path) -> Path:
    return next((golden / "lgtm_small").rglob("*.ckpt"))


def test_convert_golden_lgtm(golden: Path, stats: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "lgtm"
    report = convert_lgtm(checkpoint_of(golden), out, *stats)
    assert report["forward_max_diff"] == 0.0 and report["keys"] == 504
    assert sorted(p.name for p in out.iterdir()) == ["Mean.npy", "Std.npy", "config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["part_order"] == "official" and config["model"]["mask_padding"] is False
    assert config["source"]["official_options"]["ff_shared"] is True
    assert np.array_equal(np.load(out / "Std.npy"), np.load(stats[1]))
    assert lgtm_forward_difference(load_lgtm(out), load_official_lgtm(checkpoint_of(golden))) == 0.0


def test_failed_conversion_leaves_nothing(golden: Path, stats: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "lgtm"
    with pytest.raises(DataError, match="Std.npy: HumanML3D normalisation file is missing"):
        convert_lgtm(checkpoint_of(golden), out, stats[0], tmp_path / "absent" / "Std.npy")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(checkpoint_of(golden).read_bytes()[:4096])
    with pytest.raises(DataError, match="truncated or corrupt"):
        convert_lgtm(bad, out, *stats)
    np.save(stats[1], np.ones(10, np.float32))
    with pytest.raises(DataError, match="must be 263 finite values"):
        convert_lgtm(checkpoint_of(golden), out, *stats)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".lgtm")]


def test_convert_golden_tmr_and_wrong_part(golden: Path, tmp_path: Path) -> None:
    source = golden / "tmr_small" / "left_arm"
    report = convert_tmr(source, tmp_path / "left_arm", "left_arm")
    assert report["forward_max_diff"] == 0.0 and load_tmr(tmp_path / "left_arm").cfg.motion_dim == 48
    assert verify_tmr_folder(tmp_path / "left_arm", source) == 0.0
    with pytest.raises(DataError, match="not of torso"):
        convert_tmr(source, tmp_path / "torso", "torso")
    assert not (tmp_path / "torso").exists()


def test_missing_distilbert_cache(golden: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hf" / "hub"))
    with pytest.raises(DataError, match="distilbert-base-uncased: cannot load the distilbert text model offline"):
        convert_tmr(golden / "tmr_small" / "left_arm", tmp_path / "out", "left_arm",
                    text_model="distilbert-base-uncased")
    assert not (tmp_path / "out").exists()


def test_cli_reports_one_line_errors(golden: Path, stats: tuple[Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "lgtm"
    assert convert_official.main(["lgtm", str(checkpoint_of(golden)), "--mean", str(stats[0]), "--std",
                                  str(stats[1]), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["forward_max_diff"] == 0.0
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": torch.zeros(1)}, plain)
    assert convert_official.main(["lgtm", str(plain), "--mean", str(stats[0]), "--std", str(stats[1]),
                                  "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(plain) in err and "fix:" in err
    assert convert_official.main(["tmr", str(tmp_path / "nope"), "--part", "head", "--out", str(tmp_path / "y"),
                                  "--text-model", ""]) == 2
    assert "official TMR folder is missing" in capsys.readouterr().err


@pytest.mark.slow
def test_paper_size_fakes_load_convert_and_run(golden: Path, stats: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt = write_fake_lgtm_checkpoint(golden / "lgtm_paper_keys.tsv", tmp_path / "fake.ckpt")
    report = convert_lgtm(ckpt, tmp_path / "lgtm", *stats)
    assert report["parameters"] == 23_627_515 and report["keys"] == 936
    assert report["config"]["dim"] == 128 and report["config"]["ff_hidden"] == 2
    for part in ("left_arm", "torso", "whole_body"):
        source, _ = write_fake_tmr_folder(golden / "tmr_paper_keys.tsv", tmp_path / f"fake_{part}", part=part)
        assert convert_tmr(source, tmp_path / f"tmr_{part}", part)["latent_dim"] == 256
