"""``python -m tools.official_parity GOLDEN_DIR``: one line per check, non-zero exit on any failure."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tools import official_parity


def tmr_only_copy(golden: Path, target: Path) -> Path:
    """A golden folder holding only the TMR part (same layout)."""
    target.mkdir()
    shutil.copytree(golden / "tmr_small", target / "tmr_small")
    shutil.copy(golden / "tmr_small_io.npz", target / "tmr_small_io.npz")
    return target


def test_passes_on_a_partial_golden_folder(golden: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmr_only_copy(golden, tmp_path / "g")
    assert official_parity.main([str(folder), "--skip-fake"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11 and all(line.startswith("PASS") and "tol 1e-05" in line for line in lines[:-1])


def test_fails_when_an_output_differs(golden: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmr_only_copy(golden, tmp_path / "g")
    io = dict(np.load(folder / "tmr_small_io.npz"))
    io["left_arm_text_mu"] = io["left_arm_text_mu"] + 1e-4
    np.savez(folder / "tmr_small_io.npz", **io)
    assert official_parity.main([str(folder), "--skip-fake"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  tmr_small left_arm text_mu" in out and out.count("FAIL") == 1


def test_empty_or_missing_folder_fails(tmp_path: Path) -> None:
    assert official_parity.main([str(tmp_path / "absent")]) == 1
    assert official_parity.main([str(tmp_path), "--skip-fake"]) == 1


@pytest.mark.slow
def test_all_checks_pass_on_the_shared_goldens(golden: Path, capsys: pytest.CaptureFixture) -> None:
    assert official_parity.main([str(golden)]) == 0
    out = capsys.readouterr().out
    for name in ("denoiser x0, all frames", "DDIM 10 steps: final x", "DDIM 50 steps: final x",
                 "whole_body decoded_motion", "left_arm motion_mu", "motion embedding", "paper-size fake LGTM",
                 "paper-size fake TMR"):
        assert name in out
    assert "FAIL" not in out
