"""Official TMR run folders (config.json + last_weights/*.pt) load as models.tmr.TMR and match the official outputs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from models.official.tmr import config_part, load_official_tmr
from motion.core.errors import DataError
from tools.official_parity import TMR_TOL, tmr_checks


def test_latents_and_decoder_match_official(golden: Path) -> None:
    checks = list(tmr_checks(golden, "tmr_small"))
    names = {c.name.split()[1] for c in checks}
    assert names == {"whole_body", "left_arm"} and len(checks) == 10
    assert all(c.ok and c.tolerance == TMR_TOL for c in checks), [c.line() for c in checks]


def test_part_is_read_from_the_config(golden: Path) -> None:
    left = json.loads((golden / "tmr_small" / "left_arm" / "config.json").read_text())
    whole = json.loads((golden / "tmr_small" / "whole_body" / "config.json").read_text())
    assert config_part(left) == "left_arm" and config_part(whole) is None


def test_folder_of_the_wrong_part(golden: Path) -> None:
    with pytest.raises(DataError, match="holds the TMR of left_arm .* not of right_arm"):
        load_official_tmr(golden / "tmr_small" / "left_arm", part="right_arm")
    with pytest.raises(DataError, match="not of head"):
        load_official_tmr(golden / "tmr_small" / "whole_body", part="head")


def test_missing_folder_config_and_weights(golden: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="official TMR folder is missing"):
        load_official_tmr(tmp_path / "absent")
    copy = tmp_path / "left_arm"
    shutil.copytree(golden / "tmr_small" / "left_arm", copy)
    (copy / "last_weights" / "motion_decoder.pt").unlink()
    with pytest.raises(DataError, match="motion_decoder.pt: official TMR weights are missing"):
        load_official_tmr(copy)
    (copy / "config.json").unlink()
    with pytest.raises(DataError, match="config.json: official TMR config.json is missing"):
        load_official_tmr(copy)


def test_truncated_and_foreign_weights(golden: Path, tmp_path: Path) -> None:
    copy = tmp_path / "left_arm"
    shutil.copytree(golden / "tmr_small" / "left_arm", copy)
    path = copy / "last_weights" / "text_encoder.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="text_encoder.pt: is not a readable torch checkpoint"):
        load_official_tmr(copy)
    torch.save({"something.else": torch.zeros(3)}, path)
    with pytest.raises(DataError, match="unexpected key 'something.else'"):
        load_official_tmr(copy)


def test_weights_of_another_config(golden: Path, tmp_path: Path) -> None:
    copy = tmp_path / "left_arm"
    shutil.copytree(golden / "tmr_small" / "left_arm", copy)
    config = json.loads((copy / "config.json").read_text())
    for module in ("motion_encoder", "text_encoder", "motion_decoder"):
        config["model"][module]["ff_size"] = 256
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="has shape .* config.json gives"):
        load_official_tmr(copy)
