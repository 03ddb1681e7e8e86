"""BVH export (analytic IK) and reader (FK): round trips, facing and turning bodies, real files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motion.core.errors import DataError
from motion.core.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS
from motion.export.bvh import (
    ROTATION_ORDERS,
    bvh_offsets,
    bvh_text,
    continuous_euler,
    euler_to_matrix,
    matrix_to_euler,
    rotation_between,
    write_bvh,
)
from tests.oracles.bvh_reader import bvh_forward_kinematics, parse_bvh, read_bvh, read_bvh_frame_time
from tests.support.motions import heading_degrees, root_heading_degrees, synthetic_body

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def round_trip(joints: np.ndarray, tmp_path: Path, **kwargs: float) -> tuple[np.ndarray, list[str]]:
    """Write joints as BVH, read back; FK positions in JOINT_NAMES order and the file's names."""
    path = tmp_path / "m.bvh"
    write_bvh(path, joints, **kwargs)
    names, parents, _, positions = read_bvh(path)
    assert [names[p] if p >= 0 else None for p in parents] == [
        JOINT_NAMES[PARENTS[JOINT_INDEX[n]]] if PARENTS[JOINT_INDEX[n]] >= 0 else None for n in names]
    return positions[:, [names.index(n) for n in JOINT_NAMES]], names


# ----------------------------------------------------------------------------- rotation helpers

def test_euler_round_trip_and_equivalent_solution() -> None:
    rng = np.random.default_rng(1)
    angles = rng.uniform([-np.pi, -1.4, -np.pi], [np.pi, 1.4, np.pi], (100, 3))
    assert np.allclose(matrix_to_euler(euler_to_matrix(angles)), angles, atol=1e-9)
    alt = angles + np.array([np.pi, 0, np.pi])
    alt[:, 1] = np.pi - angles[:, 1]
    assert np.allclose(euler_to_matrix(alt), euler_to_matrix(angles), atol=1e-12)
    # ZYX means R = Rz @ Ry @ Rx: a pure x rotation then a pure z rotation
    assert np.allclose(euler_to_matrix(np.array([np.pi / 2, 0, 0])) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_continuous_euler_removes_wraps() -> None:
    yaw = np.linspace(0, 4 * np.pi, 200)  # two full turns about y of a tilted body
    rot = euler_to_matrix(np.stack([yaw, 0.2 * np.ones_like(yaw), 0.3 * np.sin(yaw)], -1), "YXZ")
    raw = matrix_to_euler(rot, "YXZ")
    fixed = continuous_euler(raw)
    assert np.abs(np.diff(raw, axis=0)).max() > np.pi  # the raw angles jump
    assert np.abs(np.diff(fixed, axis=0)).max() < 0.1
    assert np.allclose(euler_to_matrix(fixed, "YXZ"), rot, atol=1e-9)
    flipped = raw.copy()  # the other solution (a + pi, pi - b, c + pi) on odd frames
    flipped[1::2] += np.array([np.pi, 0, np.pi])
    flipped[1::2, 1] = np.pi - raw[1::2, 1]
    assert np.abs(np.diff(continuous_euler(flipped), axis=0)).max() < 0.1


def test_rotation_orders_put_the_bone_axis_in_the_middle() -> None:
    assert ROTATION_ORDERS[0] == "YXZ"
    assert ROTATION_ORDERS[JOINT_INDEX["left_knee"]] == "ZYX"
    assert ROTATION_ORDERS[JOINT_INDEX["right_elbow"]] == "ZXY"
    assert ROTATION_ORDERS[JOINT_INDEX["left_ankle"]] == "XZY"


def test_rotation_between_including_opposite() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    b[0] = -a[0]
    b[1] = a[1] * 2
    rot = rotation_between(a, b)
    assert np.allclose(np.einsum("nij,nj->ni", rot, a / np.linalg.norm(a, axis=1, keepdims=True)),
                       b / np.linalg.norm(b, axis=1, keepdims=True), atol=1e-9)
    assert np.allclose(rot @ np.swapaxes(rot, 1, 2), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(rot), 1.0)


# ----------------------------------------------------------------------------- round trips

def test_real_humanml3d_joints_round_trip(tmp_path: Path) -> None:
    files = sorted((REFERENCE / "humanml3d" / "joints").glob("*.npy"))
    if not files:
        pytest.skip("reference HumanML3D joints absent")
    worst = 0.0
    for f in files:
        joints = np.load(f)
        back, _ = round_trip(joints, tmp_path)
        assert back.shape == joints.shape
        worst = max(worst, float(np.linalg.norm(back - joints, axis=-1).max()))
    assert worst < 0.01  # metres; measured ~2e-6 (rigid SMPL bones, 6-decimal text)
    assert read_bvh_frame_time(tmp_path / "m.bvh") == pytest.approx(0.05)


def test_body_facing_away_round_trip(tmp_path: Path) -> None:
    joints = synthetic_body(np.full(60, np.pi))  # faces -z, away from a camera looking along -z
    assert np.allclose(heading_degrees(joints) % 360, 180, atol=1e-6)
    back, _ = round_trip(joints, tmp_path)
    assert np.linalg.norm(back - joints, axis=-1).max() < 1e-4
    assert np.allclose(np.abs(root_heading_degrees(tmp_path / "m.bvh")), 180, atol=20)  # pelvis itself sways


def test_turn_in_place_keeps_180_degrees(tmp_path: Path) -> None:
    yaw = np.concatenate([np.zeros(10), np.linspace(0, np.pi, 60), np.full(10, np.pi)])
    joints = synthetic_body(yaw, amplitude=0.05)
    back, _ = round_trip(joints, tmp_path)
    assert np.linalg.norm(back - joints, axis=-1).max() < 1e-4
    turn = heading_degrees(back)
    assert turn[-1] - turn[0] == pytest.approx(180, abs=6)  # not 90 as after LGTM's half-angle recover
    root = root_heading_degrees(tmp_path / "m.bvh")
    assert root[-1] - root[0] == pytest.approx(180, abs=6)
    bvh = parse_bvh((tmp_path / "m.bvh").read_text())
    assert np.abs(np.diff(bvh.values[:, 3:], axis=0)).max() < 30  # degrees per frame: no Euler flips


def test_two_full_turns_channels_continuous(tmp_path: Path) -> None:
    joints = synthetic_body(np.linspace(0, 4 * np.pi, 160), amplitude=0.3, seed=3)
    back, _ = round_trip(joints, tmp_path)
    assert np.linalg.norm(back - joints, axis=-1).max() < 1e-4
    bvh = parse_bvh((tmp_path / "m.bvh").read_text())
    assert np.abs(np.diff(bvh.values[:, 3:], axis=0)).max() < 45
    assert np.ptp(bvh.values[:, 3:6]) > 540  # the root's angles keep counting past 360 degrees


def test_noisy_joints_error_bounded_by_bone_length_changes(tmp_path: Path) -> None:
    joints = synthetic_body(np.linspace(0, np.pi, 50), seed=4)
    noisy = joints + np.random.default_rng(0).normal(scale=0.003, size=joints.shape)
    back, _ = round_trip(noisy, tmp_path)
    err = np.linalg.norm(back - noisy, axis=-1)
    assert err.max() < 0.05 and err.mean() < 0.015  # accumulated bone-length deviations of a 3 mm jitter
    assert np.linalg.norm(back - joints, axis=-1).mean() < 0.02


def test_scale_and_offsets(tmp_path: Path) -> None:
    joints = synthetic_body(np.zeros(20))
    offsets = bvh_offsets(joints)
    lengths = np.median(np.linalg.norm(joints[:, 1:] - joints[:, list(PARENTS[1:])], axis=-1), axis=0)
    assert np.allclose(np.linalg.norm(offsets[1:], axis=-1), lengths, atol=1e-6)
    back, _ = round_trip(joints, tmp_path, scale=100.0)
    assert np.abs(back / 100.0 - joints).max() < 1e-5
    text = bvh_text(joints[:3])
    assert text.count("End Site") == 5 and "Frames: 3" in text and "Frame Time: 0.050000" in text


def test_collapsed_frames_do_not_break_the_export(tmp_path: Path) -> None:
    joints = synthetic_body(np.linspace(0, 1, 10))
    joints[3] = joints[3, 0]  # every joint at one point for a frame (e.g. a broken sample)
    back, _ = round_trip(joints, tmp_path)
    assert np.isfinite(back).all()
    good = [t for t in range(10) if t != 3]
    assert np.linalg.norm(back[good] - joints[good], axis=-1).max() < 0.02


def test_bad_joints_rejected() -> None:
    with pytest.raises(ValueError):
        bvh_text(np.zeros((5, 21, 3)))
    with pytest.raises(ValueError):
        bvh_text(np.full((5, 22, 3), np.nan))


# ----------------------------------------------------------------------------- reader

def test_reader_known_answer() -> None:
    text = """HIERARCHY
ROOT a
{
  OFFSET 0 1 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT b
  {
    OFFSET 1 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 0 1
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.1
0 0 0 0 0 0 0 0 0
1 2 3 0 90 0 0 0 0
"""
    bvh = parse_bvh(text)
    assert bvh.names == ["a", "b"] and bvh.parents == [-1, 0] and bvh.frame_time == 0.1
    pos = bvh_forward_kinematics(bvh)
    assert np.allclose(pos[0], [[0, 1, 0], [1, 1, 0]])
    assert np.allclose(pos[1], [[1, 3, 3], [1, 3, 2]])  # 90 degrees about y turns +x into -z


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="MOTION"):
        parse_bvh("HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\nCHANNELS 3 Xposition Yposition Zposition\n}\n")
    path = tmp_path / "short.bvh"
    path.write_text("HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\nCHANNELS 1 Yrotation\n}\n"
                    "MOTION\nFrames: 3\nFrame Time: 0.1\n0\n1\n")
    with pytest.raises(DataError, match="short.bvh"):
        read_bvh(path)
    with pytest.raises(DataError, match="not found"):
        read_bvh(tmp_path / "missing.bvh")


@pytest.mark.parametrize("name,joints,frames", [("cmu_01_01.bvh", 31, 2752), ("smpl22_template.bvh", 22, 720)])
def test_reads_real_bvh_files(name: str, joints: int, frames: int) -> None:
    path = REFERENCE / "bvh" / name
    if not path.is_file():
        pytest.skip(f"reference {name} absent")
    names, parents, offsets, positions = read_bvh(path)
    assert len(names) == joints and positions.shape == (frames, joints, 3) and np.isfinite(positions).all()
    # FK keeps every bone at its rest length in every frame (rotation channels only below the root)
    for j, p in enumerate(parents):
        if p >= 0:
            lengths = np.linalg.norm(positions[:, j] - positions[:, p], axis=-1)
            assert np.allclose(lengths, np.linalg.norm(offsets[j]), atol=1e-6)


MOMASK_TO_SMPL = {
    "Hips": "pelvis", "LeftUpLeg": "left_hip", "LeftLeg": "left_knee", "LeftFoot": "left_ankle", "LeftToe": "left_foot",
    "RightUpLeg": "right_hip", "RightLeg": "right_knee", "RightFoot": "right_ankle", "RightToe": "right_foot",
    "Spine": "spine1", "Spine1": "spine2", "Spine2": "spine3", "Neck": "neck", "Head": "head",
    "LeftShoulder": "left_collar", "LeftArm": "left_shoulder", "LeftForeArm": "left_elbow", "LeftHand": "left_wrist",
    "RightShoulder": "right_collar", "RightArm": "right_shoulder", "RightForeArm": "right_elbow",
    "RightHand": "right_wrist",
}


def test_smpl22_template_positions_round_trip(tmp_path: Path) -> None:
    path = REFERENCE / "bvh" / "smpl22_template.bvh"
    if not path.is_file():
        pytest.skip("reference smpl22_template.bvh absent")
    names, _, _, positions = read_bvh(path)
    ours = [names.index(next(k for k, v in MOMASK_TO_SMPL.items() if v == n)) for n in JOINT_NAMES]
    joints = positions[:, ours]  # another tool's 720-frame SMPL motion, in our joint order
    back, _ = round_trip(joints, tmp_path, fps=60.0)
    assert np.linalg.norm(back - joints, axis=-1).max() < 0.01


def test_independent_reader_bvhio_agrees(tmp_path: Path) -> None:
    """A third-party BVH library (bvhio: intrinsic Euler angles in the listed channel order) replays our files."""
    bvhio = pytest.importorskip("bvhio")
    joints = synthetic_body(np.linspace(0, 4 * np.pi, 40), amplitude=0.3, seed=3)
    path = tmp_path / "m.bvh"
    write_bvh(path, joints)
    root = bvhio.readAsHierarchy(str(path))
    replay = np.zeros_like(joints)
    for t in range(len(joints)):
        root.loadPose(t)
        for joint, _, _ in root.layout():
            if joint.Name in JOINT_NAMES:
                p = joint.PositionWorld
                replay[t, JOINT_NAMES.index(joint.Name)] = (p.x, p.y, p.z)
    assert np.linalg.norm(replay - joints, axis=-1).max() < 1e-4
