"""HumanML3D 263-d features: parity with the published code, inverse, batching, turns, stats."""
from __future__ import annotations

import numpy as np
import pytest

from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.core.parts import FEATURE_GROUPS, PART_INDICES, merge_parts, split_parts
from motion.core.skeleton import FACE_JOINTS, KINEMATIC_CHAINS, PARENTS, RAW_OFFSETS, TARGET_OFFSETS
from motion.data import features as F
from motion.data.stats import Moments, group_average_std, humanml3d_mean_std, part_stats
from tests.oracles import features_numpy
from tests.oracles.humanml3d_process import process_file
from tests.oracles.quaternion import (
    cont6d_to_matrix,
    qbetween,
    qinv,
    qmul,
    qrot,
    quaternion_to_cont6d,
    quaternion_to_matrix,
)
from tests.support.motions import synthetic_clip

PARITY = 1e-4


def _reference_ids(reference):
    return sorted(p.stem for p in (reference / "humanml3d" / "joints").glob("*.npy"))


def _canonical(joints: np.ndarray) -> np.ndarray:
    lengths = np.array([len(joints)])
    return F.canonicalize(F.retarget(joints.astype(np.float64), lengths), lengths)


def turning_clip(total_turn: float, frames: int = 160) -> np.ndarray:
    """Joints of a rest-pose body walking forward while its root turns ``total_turn`` radians about +y."""
    t = np.linspace(0.0, 1.0, frames)
    yaw = total_turn * np.clip((t - 0.15) / 0.6, 0.0, 1.0)  # turn between 15% and 75% of the clip
    axis_angle = np.zeros((frames, 22, 3))
    axis_angle[:, 0, 1] = yaw
    axis_angle[:, 16, 2] = axis_angle[:, 17, 2] = 0.2 * np.sin(6 * np.pi * t)  # a little arm swing
    heading = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], axis=-1)
    translation = np.cumsum(heading * 0.05, axis=0) + [0.3, 0.95, -0.2]
    return forward_kinematics(axis_angle_to_matrix(axis_angle), translation).astype(np.float32)


# ----------------------------------------------------------------------------- parity with the published data


def test_target_offsets_equal_published(reference):
    published = np.load(reference / "humanml3d" / "reference_process" / "target_offsets.npy")
    assert np.abs(published - TARGET_OFFSETS).max() <= 1e-6


def test_recover_from_ric_matches_published_joints(reference):
    torch = pytest.importorskip("torch")
    from tests.oracles.features_torch import recover_from_ric as recover_torch

    ids = _reference_ids(reference)
    assert len(ids) >= 7
    for clip_id in ids:
        vecs = np.load(reference / "humanml3d" / "vecs" / f"{clip_id}.npy")
        joints = np.load(reference / "humanml3d" / "joints" / f"{clip_id}.npy")
        assert np.abs(F.recover_from_ric(vecs) - joints).max() <= PARITY, clip_id
        recovered = recover_torch(torch.from_numpy(vecs.astype(np.float64))).numpy()
        assert np.abs(recovered - joints).max() <= PARITY, clip_id


def test_extraction_matches_published_process_file(reference):
    root = reference / "humanml3d"
    clips = [np.load(root / "joints" / f"{i}.npy") for i in _reference_ids(reference)]
    clips.append(np.load(root / "raw_joints_000021.npy")[:, :22])
    expected = [np.load(root / "reference_process" / f"{i}.npy") for i in _reference_ids(reference)]
    expected.append(np.load(root / "reference_process" / "raw_000021.npy"))
    for clip, want in zip(clips, expected):
        got = F.extract_features(clip)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.abs(got - want).max() <= PARITY
    for got, want in zip(F.extract_features_batch(clips), expected):  # all at once, packed
        assert np.abs(got - want).max() <= PARITY


def test_published_code_oracle_reproduces_the_reference_outputs(reference):
    """tests.oracles.humanml3d_process (the speed baseline) is the published process_file."""
    root = reference / "humanml3d"
    for clip_id in _reference_ids(reference):
        want = np.load(root / "reference_process" / f"{clip_id}.npy")
        got = process_file(np.load(root / "joints" / f"{clip_id}.npy")[:, :22].copy())
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-5, clip_id


def test_extraction_agrees_with_the_published_code_in_float64():
    """Against the published code run in float64 the float64 extractor agrees to float32 rounding;
    the published float32 arithmetic alone differs by far more."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    for clip in [synthetic_clip(rng, int(n)) for n in (40, 97, 200)]:
        ours = F.extract_features(clip)
        assert np.abs(ours - process_file(clip.copy(), dtype=torch.float64)).max() <= 1e-5
        assert np.abs(ours - process_file(clip.copy())).max() <= 5e-3


@pytest.mark.parametrize("feet_threshold, fix_wrap", [(F.FEET_THRESHOLD, False), (0.01, True)])
def test_compiled_kernels_give_the_bytes_of_the_numpy_expressions(feet_threshold, fix_wrap):
    rng = np.random.default_rng(12)
    clips = [synthetic_clip(rng, int(n)) for n in rng.integers(2, 200, size=25)]
    clips += [turning_clip(np.pi), turning_clip(-np.pi)]  # bones exactly opposite their rest direction
    joints, lengths = F.pack(clips)
    got = F.extract_features_packed(joints, lengths, feet_threshold=feet_threshold, fix_wrap=fix_wrap)
    want = np.concatenate([features_numpy.extract(c, feet_threshold, fix_wrap) for c in clips])
    assert got.tobytes() == want.tobytes()


def test_batched_smoothing_is_bit_identical_to_filtering_clip_by_clip():
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(4)
    lengths = np.array([1, 2, 5, 79, 80, 81, 160, 161, 163, 300])
    x = rng.standard_normal((2, int(lengths.sum())))
    got = F._smooth_per_clip(x, lengths, F.FACING_SMOOTH_SIGMA)
    ends = np.cumsum(lengths)
    want = np.concatenate([gaussian_filter1d(x[:, e - n:e], F.FACING_SMOOTH_SIGMA, axis=-1, mode="nearest")
                           for n, e in zip(lengths, ends)], axis=1)
    assert np.array_equal(got, want)


def test_packed_extraction_bytes_do_not_depend_on_chunking_or_batching():
    rng = np.random.default_rng(8)
    clips = [synthetic_clip(rng, int(n)) for n in rng.integers(2, 260, size=30)] + [turning_clip(np.pi)]
    joints, lengths = F.pack(clips)
    reference = F.extract_features_packed(joints, lengths)
    for chunk_frames in (1, 50, 700, 10**6):
        assert np.array_equal(F.extract_features_packed(joints, lengths, chunk_frames=chunk_frames), reference)
    assert np.array_equal(np.concatenate([F.extract_features(c) for c in clips]), reference)


def test_split_merge_exact_on_real_features(reference):
    for path in sorted((reference / "humanml3d" / "vecs").glob("*.npy")):
        vecs = np.load(path)
        parts = split_parts(vecs)
        assert sum(p.shape[-1] for p in parts.values()) == 263
        assert np.array_equal(merge_parts(parts), vecs)
        assert np.array_equal(parts["torso"][:, -7:-3], vecs[:, 0:4])


# ----------------------------------------------------------------------------- batching


def test_batch_equals_one_clip_at_a_time():
    rng = np.random.default_rng(3)
    clips = [synthetic_clip(rng, int(n)) for n in rng.integers(2, 120, size=25)]
    batched = F.extract_features_batch(clips)
    for clip, got in zip(clips, batched):
        assert got.shape == (len(clip) - 1, 263)
        np.testing.assert_allclose(got, F.extract_features(clip), atol=1e-6)
    joints, lengths = F.pack(clips)
    small_chunks = F.extract_features_packed(joints, lengths, chunk_frames=50)
    np.testing.assert_allclose(small_chunks, np.concatenate(batched), atol=1e-6)
    recovered = F.unpack(F.recover_from_ric(np.concatenate(batched), lengths - 1), lengths - 1)
    for got, vecs in zip(recovered, batched):
        np.testing.assert_allclose(got, F.recover_from_ric(vecs), atol=1e-9)


def test_bad_lengths_are_rejected():
    with pytest.raises(ValueError):
        F.extract_features_packed(np.zeros((10, 22, 3)), np.array([5, 4]))
    with pytest.raises(ValueError):
        F.extract_features_packed(np.zeros((10, 22, 3)), np.array([9, 1]))


# ----------------------------------------------------------------------------- geometry


def test_features_invert_to_the_canonical_motion():
    """recover_from_ric(extract(j)) gives back the retargeted, floored, +Z-facing motion exactly
    (the random clip's facing crosses 180 degrees, so it needs the wrap fix; see the test below)."""
    rng = np.random.default_rng(5)
    for clip in [synthetic_clip(rng, 90), turning_clip(np.pi / 2)]:
        canonical = _canonical(clip)
        assert abs(canonical[..., 1].min()) < 1e-9 and np.allclose(canonical[0, 0, [0, 2]], 0.0)
        recovered = F.recover_from_ric(F.extract_features(clip, fix_wrap=True))
        assert np.abs(recovered - canonical[:-1]).max() < 1e-4


def test_first_frame_faces_plus_z_and_bones_take_target_lengths():
    clip = synthetic_clip(np.random.default_rng(7), 60) * 1.3  # a taller body
    canonical = _canonical(clip)
    lengths = np.linalg.norm(canonical[:, 1:] - canonical[:, list(PARENTS[1:])], axis=-1)
    target = np.linalg.norm(TARGET_OFFSETS[1:], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(target, lengths.shape), atol=1e-5)
    r_hip, l_hip, r_sh, l_sh = FACE_JOINTS
    across = canonical[0, r_hip] - canonical[0, l_hip] + canonical[0, r_sh] - canonical[0, l_sh]
    forward = np.cross([0.0, 1.0, 0.0], across)
    assert forward[2] > 0 and abs(forward[0]) < 1e-9 * np.linalg.norm(forward) + 1e-12


@pytest.mark.parametrize("turn", [np.pi, -np.pi])
def test_a_180_degree_turn_stays_180(turn):
    clip = turning_clip(turn)
    vecs = F.extract_features(clip)
    assert np.isfinite(vecs).all()  # bones exactly opposite their rest direction (HumanML3D: NaN) are handled
    total = 2.0 * vecs[:, 0].astype(np.float64).sum()  # the feature is a half-angle step
    assert abs(abs(total) - np.pi) < 0.05
    recovered = F.recover_from_ric(vecs)
    canonical = _canonical(clip)[:-1]
    assert np.abs(recovered - canonical).max() < 1e-4
    hips = recovered[:, 1] - recovered[:, 2]  # left minus right hip: points to the body's left
    assert hips[0] @ hips[-1] < -0.99 * np.linalg.norm(hips[0]) * np.linalg.norm(hips[-1])


def test_root_wrap_fix_keeps_full_turns_consistent():
    """Past 180 degrees the published arcsin flips one step's sign; fix_root_wrap keeps it right."""
    clip = turning_clip(2.5 * np.pi, frames=240)  # 450 degrees: the facing crosses 180 once
    canonical = _canonical(clip)[:-1]
    fixed = F.extract_features(clip, fix_wrap=True)
    published = F.extract_features(clip)
    assert np.abs(F.recover_from_ric(fixed) - canonical).max() < 1e-4
    assert np.abs(F.recover_from_ric(published) - canonical).max() > 1e-2
    differs = np.flatnonzero(np.abs(fixed[:, 0] - published[:, 0]) > 1e-7)
    assert len(differs) == 1  # only the step where the facing crosses 180 degrees
    np.testing.assert_array_equal(np.delete(fixed, differs, axis=0), np.delete(published, differs, axis=0))


def test_6d_rotations_match_quaternion_ik_and_fk_rebuilds_the_pose():
    positions = _canonical(synthetic_clip(np.random.default_rng(11), 30))
    yaw = F.root_yaw(positions, np.array([len(positions)]))
    rot6d = F.joint_rotations_6d(positions, yaw)
    # Independent IK with the generic quaternion helpers, chain by chain as HumanML3D does.
    root = np.stack([np.cos(yaw / 2), 0 * yaw, np.sin(yaw / 2), 0 * yaw], axis=-1)
    expected = np.zeros_like(rot6d)
    for chain in KINEMATIC_CHAINS:
        world = root
        for parent, joint in zip(chain[:-1], chain[1:]):
            bone = positions[:, joint] - positions[:, parent]
            direction = bone / np.linalg.norm(bone, axis=-1, keepdims=True)
            rest = np.broadcast_to(RAW_OFFSETS[joint], bone.shape)
            arc = qbetween(rest, direction)
            np.testing.assert_allclose(qrot(arc, rest), direction, atol=1e-12)
            local = qmul(qinv(world), arc)
            expected[:, joint - 1] = quaternion_to_cont6d(local)
            world = qmul(world, local)
    np.testing.assert_allclose(rot6d, expected, atol=1e-10)
    # FK of the 6D rotations with the target offsets rebuilds every joint.
    rebuilt = np.zeros_like(positions)
    rebuilt[:, 0] = positions[:, 0]
    local = cont6d_to_matrix(rot6d)
    for chain in KINEMATIC_CHAINS:
        world = quaternion_to_matrix(root)
        for parent, joint in zip(chain[:-1], chain[1:]):
            world = world @ local[:, joint - 1]
            rebuilt[:, joint] = rebuilt[:, parent] + world @ TARGET_OFFSETS[joint].astype(np.float64)
    np.testing.assert_allclose(rebuilt, positions, atol=1e-5)


def test_foot_contacts_follow_the_threshold():
    positions = np.zeros((4, 22, 3))
    positions[:, 7, 0] = [0.0, 0.01, 0.1, 0.1]  # left ankle: still-ish, moving, still
    contacts = F.foot_contacts(positions, np.array([4]), threshold=0.002)
    assert contacts[:, 0].tolist() == [1.0, 0.0, 1.0]
    assert contacts[:, 1:].min() == 1.0


def test_torch_recover_matches_numpy_on_padded_batch():
    torch = pytest.importorskip("torch")
    from tests.oracles.features_torch import recover_from_ric as recover_torch

    rng = np.random.default_rng(13)
    a, b = F.extract_features(synthetic_clip(rng, 50)), F.extract_features(synthetic_clip(rng, 80))
    padded = np.zeros((2, 79, 263))
    padded[0, :49], padded[1] = a, b
    got = recover_torch(torch.from_numpy(padded)).numpy()
    np.testing.assert_allclose(got[0, :49], F.recover_from_ric(a), atol=1e-9)
    np.testing.assert_allclose(got[1], F.recover_from_ric(b), atol=1e-9)


# ----------------------------------------------------------------------------- stats


def test_stats_group_averaging_and_tmr_std():
    rng = np.random.default_rng(17)
    clips = [rng.normal(1.0, rng.uniform(0.5, 2.0, 263), size=(int(n), 263)) for n in rng.integers(5, 40, size=12)]
    moments = Moments()
    for clip in clips:
        moments.update(clip)
    frames = np.concatenate(clips)
    mean, std = humanml3d_mean_std(moments)
    np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-6)
    per_dim = frames.std(axis=0)
    for group in FEATURE_GROUPS:
        np.testing.assert_allclose(std[group], per_dim[group].mean(), rtol=1e-6)
    assert np.array_equal(group_average_std(per_dim)[3:4], per_dim[3:4])
    stats = part_stats(moments)
    np.testing.assert_allclose(stats["whole_body_std"], frames.std(axis=0, ddof=1), rtol=1e-6)
    for part, index in PART_INDICES.items():
        np.testing.assert_allclose(stats[f"{part}_mean"], frames[:, index].mean(axis=0), rtol=1e-6)
        assert stats[f"{part}_std"].shape == (len(index),)


def test_published_std_is_group_averaged(reference):
    std = np.load(reference / "humanml3d" / "Std.npy")
    for group in FEATURE_GROUPS:
        assert np.ptp(std[group]) < 1e-6 * std[group].max()


def test_keep_heap_sets_glibc_thresholds_and_changes_no_bytes():
    """extract_features_packed sets glibc's heap thresholds (mallopt succeeds on glibc); the bytes stay."""
    import platform

    from motion.core.memory import keep_heap

    rng = np.random.default_rng(9)
    clips = [synthetic_clip(rng, int(n)) for n in rng.integers(2, 300, size=12)]
    joints, lengths = F.pack(clips)
    before = F.extract_features_packed(joints, lengths)
    assert keep_heap() is (platform.libc_ver()[0] == "glibc")
    assert np.array_equal(F.extract_features_packed(joints, lengths, chunk_frames=333), before)
