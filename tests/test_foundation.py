"""Skeleton, part partition, captions, conventions, FK and atomic I/O."""
from __future__ import annotations

import numpy as np
import pytest

from motion.core import conventions, io, kinematics, parts, skeleton
from motion.core.errors import DataError
from motion.data import captions


def test_part_partition_matches_lgtm_slices():
    idx = parts.PART_INDICES
    assert parts.PART_DIMS == {"head": 24, "left_arm": 48, "right_arm": 48, "torso": 43, "left_leg": 50,
                               "right_leg": 50}
    # head: ric 37:40, 46:49 then rot 133:139, 151:157 then vel 229:232, 238:241 (LGTM's layout)
    expected_head = [*range(37, 40), *range(46, 49), *range(133, 139), *range(151, 157), *range(229, 232),
                     *range(238, 241)]
    assert idx["head"].tolist() == expected_head
    assert idx["torso"][-7:].tolist() == [0, 1, 2, 3, 193, 194, 195]
    assert idx["left_leg"][-2:].tolist() == [259, 260]
    assert idx["right_leg"][-2:].tolist() == [261, 262]


def test_split_merge_is_exact_inverse_numpy_and_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(3, 7, parts.FEATURE_DIM)).astype(np.float32)
    assert np.array_equal(parts.merge_parts(parts.split_parts(x)), x)
    t = torch.from_numpy(x)
    assert torch.equal(parts.merge_parts(parts.split_parts(t)), t)


def test_mirror_twice_is_identity_and_swaps_sides():
    j = np.random.default_rng(1).normal(size=(5, 22, 3))
    m = skeleton.mirror_joints(j)
    assert np.allclose(skeleton.mirror_joints(m), j)
    assert np.allclose(m[:, 1, 0], -j[:, 2, 0])  # left hip <- negated right hip


def test_fk_rest_pose_bone_lengths_and_rotation():
    joints = kinematics.smpl_forward_kinematics(np.zeros((1, 156)), np.zeros((1, 3)))[0]
    for j, p in enumerate(skeleton.PARENTS[1:], start=1):
        bone = np.linalg.norm(skeleton.TARGET_OFFSETS[j])
        assert np.linalg.norm(joints[j] - joints[p]) == pytest.approx(bone, abs=1e-6)
    assert joints[15, 1] > joints[0, 1] > joints[10, 1]  # head above pelvis above the feet (y up)
    r = kinematics.axis_angle_to_matrix(np.array([0.0, np.pi / 2, 0.0]))
    assert np.allclose(r @ np.array([1.0, 0, 0]), [0, 0, -1], atol=1e-12)


def test_conventions_axes_and_cut():
    up_z = np.array([[0.0, 0.0, 1.0]])
    assert np.allclose(conventions.amass_to_pose_data(up_z), [[0, 1, 0]])
    assert conventions.downsample_step(120) == 6 and conventions.downsample_step(60) == 3
    with pytest.raises(DataError, match="frame rate"):
        conventions.downsample_step(0.0, "x.npz")
    data = np.arange(100 * 3, dtype=float).reshape(100, 1, 3)
    clip = conventions.cut_clip(data, 10, 20, "./pose_data/KIT/1/a.npy")
    assert clip.shape == (10, 1, 3) and clip[0, 0, 0] == -30.0
    trimmed = conventions.cut_clip(data, 0, 5, "./pose_data/MPI_HDM05/a.npy")
    assert trimmed[0, 0, 1] == data[60, 0, 1]


def test_captions_roundtrip_and_mirror(tmp_path):
    path = tmp_path / "000001.txt"
    path.write_text("a man waves his left hand.#a/DET man/NOUN#0.0#0.0\nhe kicks#he/PRON#nan#nan\n")
    caps = captions.read_captions(path)
    assert caps[1].start == 0.0 and caps[0].text == "a man waves his left hand."
    assert captions.mirror_caption(caps[0]).text == "a man waves his right hand."
    (tmp_path / "again.txt").write_text(captions.format_captions(caps))
    assert captions.read_captions(tmp_path / "again.txt") == caps
    bad = tmp_path / "bad.txt"
    bad.write_text("no hashes here\n")
    with pytest.raises(DataError, match="bad.txt"):
        captions.read_captions(bad)


def test_mirror_part_annotation_swaps_sides():
    ann = {"right_arm": {"action": "wave", "text": "waves the right hand"}}
    m = captions.mirror_part_annotation(ann)
    assert m["left_arm"] == {"action": "wave", "text": "waves the left hand"}
    assert m["right_arm"] == captions.IDLE and list(m) == list(parts.PART_NAMES)


def test_atomic_writes_leave_nothing_on_failure(tmp_path):
    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    folder = tmp_path / "folder"
    with pytest.raises(RuntimeError):
        with io.atomic_dir(folder) as tmp:
            (tmp / "a").write_text("x")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    with io.atomic_dir(folder) as tmp:
        (tmp / "a").write_text("1")
    with io.atomic_dir(folder) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in folder.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_data_error_is_one_line():
    err = DataError("a/b.npz", "missing key 'poses'\nsecond line", "use SMPL+H G files")
    assert "\n" not in str(err) and str(err).startswith("a/b.npz: ")
