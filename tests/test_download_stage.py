"""The download stage end to end: amass_local (archives + extracted folders), synthetic, atomic outputs."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from motion.core.errors import DataError
from motion.core.settings import SettingsError
from motion.data.amass import resolve_source
from stages.download import run
from stages.settings import Settings
from tests.support.amass import amass_archive, amass_npz_bytes, fake_humanml3d, make_tar
from tests.support.params import settings_with, with_overrides

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = {"download.source": "synthetic", "download.synthetic.num_motions": 12, "seed": 7}
AMASS_KEYS = {"poses", "trans", "betas", "gender", "mocap_framerate", "dmpls"}


def download_overrides(data: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Dotted overrides putting every output under ``data``, assets off, plus ``overrides``."""
    return {"paths.amass": str(data / "raw/amass"), "paths.annotations": str(data / "raw/annotations"),
            "paths.assets": str(data / "raw/assets"), "download.assets.enabled": False, **overrides}


def download_settings(data: Path, overrides: dict[str, Any]) -> Settings:
    """The download stage's view of the real params with every output under ``data`` and ``overrides``."""
    return settings_with(download_overrides(data, overrides), stage="download")


@pytest.fixture
def local_inputs(tmp_path: Path) -> dict[str, Any]:
    """An AMASS download folder (two archives and one extracted dataset) and a HumanML3D checkout."""
    archives = tmp_path / "amass_downloads"
    archives.mkdir()
    amass_archive(archives / "CMU.tar.bz2", "CMU")
    amass_archive(archives / "PosePrior.tar.bz2", "PosePrior", seed=3)
    extracted = archives / "KIT" / "3"
    extracted.mkdir(parents=True)
    (extracted / "kick_high_left02_poses.npz").write_bytes(amass_npz_bytes(seed=9))
    (archives / "notes.txt").write_text("not an archive, ignored\n")
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((30, 24, 3), dtype=np.float32))
    humanml3d = fake_humanml3d(tmp_path / "HumanML3D", ["000000", "000001", "000002", "000003"],
                               ["KIT/3/kick_high_left02_poses.npy", "CMU/s1/walk_poses.npy",
                                "MPI_Limits/s1/run_poses.npy", "humanact12/humanact12/P01G01R01F0001T0064A0101.npy"],
                               humanact12={"P01G01R01F0001T0064A0101.npy": buffer.getvalue()})
    return {"download.source": "amass_local", "download.humanml3d_dir": str(humanml3d),
            "download.dataset_folders": {}, "download.amass_local.archive_dir": str(archives),
            "download.amass_local.link": True}


def leftovers(folder: Path) -> list[str]:
    """Temporary folders atomic_dir would leave behind after a crash."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_amass_local_builds_the_contract_layout(tmp_path: Path, local_inputs: dict[str, Any]) -> None:
    data = tmp_path / "data"
    run(download_settings(data, local_inputs))
    amass, annotations = data / "raw/amass", data / "raw/annotations"
    assert sorted(p.name for p in amass.iterdir()) == ["CMU", "KIT", "MPI_Limits", "humanact12"]
    # every source_path of index.csv resolves (as the poses stage looks it up) to a readable motion file
    for line in (annotations / "index.csv").read_text().splitlines()[1:]:
        path = resolve_source(amass, line.split(",")[0])
        assert path is not None, line
        if path.suffix == ".npy":
            assert np.load(path).shape == (30, 24, 3)
            continue
        with np.load(path) as motion:
            assert AMASS_KEYS <= set(motion.files) and motion["poses"].shape[1] == 156
    assert (annotations / "splits/train.txt").read_text() == "000000\n000001\n000002\n"
    assert len(list((annotations / "texts").glob("*.txt"))) == 8
    assert json.loads((data / "raw/assets/assets.json").read_text()) == {}
    assert leftovers(data / "raw") == []


def test_rerun_replaces_outputs_and_failure_keeps_the_previous_ones(
        tmp_path: Path, local_inputs: dict[str, Any]) -> None:
    data = tmp_path / "data"
    params = download_settings(data, local_inputs)
    run(params)
    before = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    run(params)
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == before
    archive_dir = Path(local_inputs["download.amass_local.archive_dir"])
    make_tar(archive_dir / "Evil.tar.bz2", {"Evil/../../../escaped.txt": b"x"})
    with pytest.raises(DataError, match=r"Evil.tar.bz2.*'Evil/\.\./\.\./\.\./escaped.txt'"):
        run(params)
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == before
    assert not list(tmp_path.rglob("escaped.txt"))


def test_bad_params_are_one_line_errors(tmp_path: Path, local_inputs: dict[str, Any]) -> None:
    data = tmp_path / "data"
    with pytest.raises(SettingsError, match=r"params.yaml: download.source: expected one of 'synthetic' \| "
                                            r"'amass_local' \| 'amass_remote', got 'amass'"):
        run(download_settings(data, {**local_inputs, "download.source": "amass"}))
    with pytest.raises(DataError, match="humanml3d_dir is empty"):
        run(download_settings(data, {**local_inputs, "download.humanml3d_dir": ""}))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no AMASS archives"):
        run(download_settings(data, {**local_inputs, "download.amass_local.archive_dir": str(empty)}))
    assert not data.exists() or leftovers(data / "raw") == []


def test_main_reads_params_file(tmp_path: Path, local_inputs: dict[str, Any]) -> None:
    data = tmp_path / "data"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(with_overrides(download_overrides(data, local_inputs))))
    result = subprocess.run([sys.executable, "-m", "stages.download"], cwd=REPO_ROOT, capture_output=True,
                            text=True, env={"LGTM_PARAMS": str(params_file), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert (data / "raw/amass/CMU/s1/walk_poses.npz").is_file()


def test_synthetic_source_follows_the_contract(tmp_path: Path) -> None:
    synthetic = pytest.importorskip("motion.data.synthetic")
    if not hasattr(synthetic, "generate_dataset"):
        pytest.skip("motion.data.synthetic.generate_dataset is not written yet")
    data = tmp_path / "data"
    run(download_settings(data, SYNTHETIC))
    amass, annotations = data / "raw/amass", data / "raw/annotations"
    for name in ("index.csv", "part_texts.json", "synthetic_labels.json", "splits/train.txt",
                 "splits/val.txt", "splits/test.txt"):
        assert (annotations / name).is_file(), name
    files = sorted(amass.rglob("*.npz"))
    assert files
    with np.load(files[0]) as motion:
        assert AMASS_KEYS <= set(motion.files)
    assert json.loads((data / "raw/assets/assets.json").read_text()) == {}
    assert leftovers(data / "raw") == []
    first = {p.relative_to(data): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}
    shutil.rmtree(data)
    run(download_settings(data, SYNTHETIC))
    second = {p.relative_to(data): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first), "synthetic data differ between identical runs"
