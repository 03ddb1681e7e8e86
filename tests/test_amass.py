"""AMASS files: reading, the preflight checks, dataset-name aliases and index.csv."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motion.core.conventions import amass_to_pose_data, downsample_step
from motion.core.errors import DataError
from motion.data.amass import (
    DATASET_ALIASES,
    candidate_paths,
    check_amass_file,
    check_motion_file,
    downsample,
    is_motion_file,
    load_amass,
    read_index,
    resolve_source,
    smplx_variant_of,
    source_parts,
)
from motion.data.body_model import BuiltinSkeleton
from tests.support.amass import write_amass_npz


def test_read_real_amass_files(reference: Path) -> None:
    for name, fps in (("amass_sample.npz", 120.0), ("dmpl_sample.npz", 120.00004577636719)):
        path = reference / "amass" / name
        header = check_amass_file(path)
        sequence = load_amass(path)
        assert header.fps == pytest.approx(fps) and sequence.fps == pytest.approx(fps)
        assert sequence.poses.shape == (header.frames, 156) and sequence.trans.shape == (header.frames, 3)
        assert sequence.betas.shape == (16,) and sequence.gender in ("male", "female")
        step = downsample_step(sequence.fps)
        assert step == 6
        poses, trans = downsample(sequence, step)
        assert poses.shape[0] == -(-header.frames // 6)  # frames 0, 6, 12, ...
    assert load_amass(reference / "amass" / "amass_sample.npz").poses.shape[0] == 601
    assert downsample(load_amass(reference / "amass" / "amass_sample.npz"), 6)[0].shape[0] == 101


def test_real_amass_builtin_joints_look_human(reference: Path) -> None:
    for name in ("amass_sample.npz", "dmpl_sample.npz"):
        sequence = load_amass(reference / "amass" / name)
        poses, trans = downsample(sequence, downsample_step(sequence.fps))
        joints = amass_to_pose_data(BuiltinSkeleton().joints(poses, trans, sequence.betas, sequence.gender))
        y = joints[..., 1]
        feet = y[:, [7, 8, 10, 11]].min(axis=1)
        assert np.all(y[:, 12] > y[:, 0]) and np.all(y[:, 0] > feet)  # neck above pelvis above the feet: upright
        assert np.abs(feet).max() < 0.3  # the feet stay near the floor (AMASS floors are near z = 0)
        height = y[:, 12] - feet
        assert np.all((height > 0.9) & (height < 2.0))


def test_downsample_frame_counts(tmp_path: Path) -> None:
    for fps, step, frames in ((120.0, 6, 41), (60.0, 3, 81), (100.0, 5, 49), (250.0, 12, 21)):
        sequence = load_amass(write_amass_npz(tmp_path / f"{int(fps)}.npz", frames=241, fps=fps))
        assert downsample_step(sequence.fps) == step
        assert downsample(sequence, step)[0].shape[0] == frames == -(-241 // step)
    with pytest.raises(DataError, match="frame rate"):
        downsample_step(10.0, "x.npz")


def test_index_and_aliases(tmp_path: Path) -> None:
    index = tmp_path / "index.csv"
    index.write_text("source_path,start_frame,end_frame,new_name\n"
                     "./pose_data/BioMotionLab_NTroje/rub001/0000_walk_poses.npy,0,40,000001.npy\n"
                     "./pose_data/humanact12/humanact12/P01.npy,0,-1,000002.npy\n")
    rows = read_index(index)
    assert [r.clip_id for r in rows] == ["000001", "000002"] and rows[1].end_frame == -1
    assert source_parts(rows[0].source_path) == ("BioMotionLab_NTroje", "rub001", "0000_walk_poses.npy")
    root = tmp_path / "amass"
    assert [p.relative_to(root).as_posix() for p in candidate_paths(root, rows[0].source_path)] == [
        "BioMotionLab_NTroje/rub001/0000_walk_poses.npz", "BMLrub/rub001/0000_walk_poses.npz"]
    assert resolve_source(root, rows[0].source_path) is None
    write_amass_npz(root / "BMLrub" / "rub001" / "0000_walk_poses.npz")
    assert resolve_source(root, rows[0].source_path) == root / "BMLrub" / "rub001" / "0000_walk_poses.npz"
    assert candidate_paths(root, rows[1].source_path) == [root / "humanact12" / "humanact12" / "P01.npy"]
    assert all(alias not in DATASET_ALIASES for aliases in DATASET_ALIASES.values() for alias in aliases)

    index.write_text("source_path,start_frame,end_frame,new_name\n./pose_data/A/b/c.npy,0,x,000001.npy\n")
    with pytest.raises(DataError, match="not integers"):
        read_index(index)
    index.write_text("source_path,start_frame,new_name\n")
    with pytest.raises(DataError, match="end_frame"):
        read_index(index)
    index.write_text("source_path,start_frame,end_frame,new_name\n./a.npy,0,1,000001.npy\n./b.npy,0,1,000001.npy\n")
    with pytest.raises(DataError, match="not unique"):
        read_index(index)


def test_non_motion_files_are_ignored() -> None:
    assert is_motion_file("CMU/01/01_01_poses.npz")
    assert not is_motion_file("CMU/01/shape.npz") and not is_motion_file("CMU/LICENSE.txt")
    assert not is_motion_file("CMU/readme.txt")
    with pytest.raises(DataError, match="not a motion sequence"):
        check_motion_file("CMU/01/shape.npz", "./pose_data/CMU/01/shape.npy")


@pytest.mark.parametrize("case, match", [
    ("truncated", "truncated or corrupt"),
    ("not_zip", "truncated or corrupt"),
    ("missing_keys", r"keys \['trans'\] are missing"),
    ("shape_npz", "keys .* are missing"),
    ("smplx_dims", "SMPL-X .* 'SMPL\\+H G'"),
    ("smplx_keys", "SMPL-X .* 'SMPL\\+H G'"),
    ("bad_fps", "frame rate"),
    ("bad_gender", "gender"),
    ("short_trans", "trans has shape"),
])
def test_preflight_rejects_bad_files(tmp_path: Path, case: str, match: str) -> None:
    path = tmp_path / "CMU" / "01" / "01_01_poses.npz"
    if case == "truncated":
        good = write_amass_npz(path).read_bytes()
        path.write_bytes(good[: len(good) // 2])
    elif case == "not_zip":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"not an archive")
    elif case == "missing_keys":
        write_amass_npz(path, trans=None)
    elif case == "shape_npz":
        path.parent.mkdir(parents=True)
        np.savez(path, betas=np.zeros(16), gender=np.array("male"))
    elif case == "smplx_dims":
        write_amass_npz(path, poses=np.zeros((240, 165)))
    elif case == "smplx_keys":
        write_amass_npz(path, mocap_framerate=None, mocap_frame_rate=np.array(120.0),
                        surface_model_type=np.array("smplx"))
    elif case == "bad_fps":
        write_amass_npz(path, mocap_framerate=np.array(np.nan))
    elif case == "bad_gender":
        write_amass_npz(path, gender=np.array("robot"))
    elif case == "short_trans":
        write_amass_npz(path, trans=np.zeros((10, 3)))
    with pytest.raises(DataError, match=match) as info:
        check_motion_file(path, "./pose_data/CMU/01/01_01_poses.npy")
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_nan_values_and_bytes_gender(tmp_path: Path) -> None:
    poses = np.zeros((50, 156))
    poses[7, 4] = np.nan
    path = write_amass_npz(tmp_path / "nan_poses.npz", frames=50, poses=poses)
    check_amass_file(path)  # the cheap preflight reads headers only
    with pytest.raises(DataError, match="NaN or inf .* index 7"):
        load_amass(path)
    path = write_amass_npz(tmp_path / "b_poses.npz", gender=np.array(b"female"))
    assert check_amass_file(path).gender == "female" and load_amass(path).gender == "female"


def test_smplx_archive_is_recognised(tmp_path: Path) -> None:
    root = tmp_path / "amass"
    stageii = write_amass_npz(root / "BMLrub" / "rub001" / "0000_walk_stageii.npz", mocap_framerate=None,
                              mocap_frame_rate=np.array(120.0))
    source = "./pose_data/BioMotionLab_NTroje/rub001/0000_walk_poses.npy"
    assert smplx_variant_of(root, source) == stageii
    with pytest.raises(DataError, match="SMPL-X.*SMPL\\+H G' archive of BioMotionLab_NTroje"):
        check_motion_file(stageii, source)


def test_real_index_maps_onto_amass_names(reference: Path, tmp_path: Path) -> None:
    rows = read_index(reference / "humanml3d" / "index.csv")
    assert len(rows) == 14616 and rows[0].clip_id == "000000"
    datasets = {source_parts(r.source_path)[0] for r in rows}
    assert {"KIT", "CMU", "humanact12", "BioMotionLab_NTroje", "MPI_HDM05"} <= datasets
    assert set(DATASET_ALIASES) - datasets == {"TCD_handMocap"}  # every other alias is used by HumanML3D
    for row in rows:
        paths = candidate_paths(tmp_path, row.source_path)
        if "humanact12" in row.source_path:
            assert paths[0].suffix == ".npy"
        else:
            assert paths and all(p.name.endswith("_poses.npz") for p in paths)
