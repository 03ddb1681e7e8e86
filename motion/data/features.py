"""HumanML3D's 263-d motion features from joint positions, and back (``recover_from_ric``).

Re-implements ``process_file`` of HumanML3D's ``motion_representation`` (Guo et al., CVPR 2022)
for many clips at once: numba kernels loop over the frames, numpy computes the angles. Clips of
different lengths are *packed*: their frames are concatenated into one (N, 22, 3) array and
``lengths`` (B,) says where each clip ends. A clip of T frames gives T-1 feature frames
(velocities need the next frame).

Steps (all per clip): retarget to the target skeleton, put on the floor, move the first root to
the XZ origin, turn the first frame to face +Z, detect foot contacts, estimate the per-frame root
(yaw) rotation from a smoothed facing direction, IK to 6D joint rotations, root-invariant joint
positions (ric) and local velocities. The 263 dims are laid out as in motion.core.parts.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit
from scipy.ndimage import gaussian_filter1d

from motion.core.memory import keep_heap
from motion.core.parts import FEATURE_DIM, FOOT_CONTACT, LOCAL_VEL, RIC, ROOT_HEIGHT, ROOT_LIN_VEL, ROOT_ROT_VEL, ROT6D
from motion.core.skeleton import (
    FACE_JOINTS,
    KINEMATIC_CHAINS,
    LEFT_FOOT,
    NUM_JOINTS,
    PARENTS,
    RAW_OFFSETS,
    RIGHT_FOOT,
    TARGET_OFFSETS,
)

FEET_THRESHOLD = 0.002  # squared metres per frame: below it a foot joint counts as in contact
FACING_SMOOTH_SIGMA = 20.0  # frames: Gaussian smoothing of the facing direction for the root rotation
LEG_BONES = (5, 8)  # right knee, right ankle: the bones whose lengths set the retargeting scale

CHUNK_FRAMES = 1024  # frames per pass: each work array ~0.5 MB (kept in the heap: keep_heap); 512-16,384 run alike

_PARENTS = np.array(PARENTS[1:], dtype=np.int64)  # parent of joints 1..21 (a parent comes before its children)


def _ik_parents() -> np.ndarray:
    """Joint whose rotation each joint's local rotation is relative to, in HumanML3D's IK.

    Every kinematic chain starts from the root rotation: the arm chains begin at spine3 (9) yet
    their first bones (collars 13, 14) are relative to the root, not to spine3."""
    parent = np.zeros(NUM_JOINTS, dtype=np.int64)
    for chain in KINEMATIC_CHAINS:
        for i in range(1, len(chain)):
            parent[chain[i]] = 0 if i == 1 else chain[i - 1]
    return parent[1:]


_IK_PARENTS = _ik_parents()
# Axis of the half turn that takes a bone onto the exact opposite of its rest direction: +y for
# horizontal rest directions (the body turned around), +x for vertical ones.
_HALF_TURN_AXES = np.where(np.abs(RAW_OFFSETS[1:, 1:2]) > 0.5, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])


# ----------------------------------------------------------------------------- packing helpers


def pack(clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate clips (T_i, ...) along time: (sum T_i, ...) and their lengths (B,)."""
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    return np.concatenate(clips, axis=0), lengths


def unpack(packed: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Split a packed array back into per-clip arrays of the given lengths."""
    return np.split(packed, np.cumsum(lengths)[:-1], axis=0)


def _starts(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def _pairs(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (src, dst) of every pair of consecutive frames inside the same clip."""
    keep = np.ones(int(lengths.sum()), dtype=bool)
    keep[np.cumsum(lengths) - 1] = False
    src = np.flatnonzero(keep)
    return src, src + 1


def _segment_cumsum(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 0 restarting at every clip start (inclusive)."""
    total = np.cumsum(x, axis=0)
    starts = _starts(lengths)
    before = total[starts] - x[starts]
    return total - np.repeat(before, lengths, axis=0)


# ----------------------------------------------------------------------------- geometry helpers


def _rotate_y(v: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate vectors (..., 3) about +y by angles given as cos/sin broadcast to v[..., 0]."""
    x, z = v[..., 0], v[..., 2]
    out = np.empty(np.broadcast_shapes(v.shape, np.shape(cos) + (1,)), dtype=np.result_type(v, cos))
    out[..., 0] = cos * x + sin * z
    out[..., 1] = v[..., 1]
    out[..., 2] = cos * z - sin * x
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1] + v[..., 2] * v[..., 2])[..., None]


def _facing_yaw(forward: np.ndarray) -> np.ndarray:
    """Yaw angle (about +y) of the rotation that turns each xz ``forward`` (..., 3) onto +Z."""
    return np.arctan2(-forward[..., 0], forward[..., 2])


def _forward(across: np.ndarray) -> np.ndarray:
    """Horizontal forward vectors up x across (..., 3), for unit-normalised across vectors."""
    across = _unit(across)
    return np.stack([across[..., 2], np.zeros_like(across[..., 0]), -across[..., 0]], axis=-1)


# ----------------------------------------------------------------------------- compiled per-frame kernels
#
# The per-frame arithmetic runs in numba kernels, one loop over frames each, so every frame's 22
# joints are read once and every feature is written straight into its row. The kernels compile
# without fast-math (no reassociation, no fused multiply-add): each +, -, *, / and sqrt is one IEEE
# operation in the order written, exactly as the numpy expressions they replaced, so the bytes are
# the same as that numpy code's. The transcendental functions (cos, sin, arctan2, arcsin) stay in
# numpy, on whole arrays. Positions are (N, 22, 3) float64, C-contiguous.

_jit = njit(cache=True, nogil=True, error_model="numpy")  # error_model: 0/0 is NaN, as in numpy

_REST = np.ascontiguousarray(RAW_OFFSETS[1:], dtype=np.float64)  # unit rest direction of each bone
_FEET = np.array(LEFT_FOOT + RIGHT_FOOT, dtype=np.int64)
_FEATURE_OFFSETS = (ROOT_ROT_VEL.start, ROOT_LIN_VEL.start, ROOT_HEIGHT.start, RIC.start, ROT6D.start,
                    LOCAL_VEL.start, FOOT_CONTACT.start)


def _positions(joints: np.ndarray) -> np.ndarray:
    """Joints (N, >=22, 3) as the kernels' (N, 22, 3) C-contiguous float64."""
    return np.ascontiguousarray(np.asarray(joints)[:, :NUM_JOINTS], dtype=np.float64)


@_jit
def _retarget_kernel(joints, starts, ends, root_scale, bone_length, out, floor):
    """Keep every bone direction, set its length; scale the root; floor[b] = lowest y of clip b."""
    for b in range(len(starts)):
        lowest = np.inf
        for i in range(starts[b], ends[b]):
            for k in range(3):
                out[i, 0, k] = joints[i, 0, k] * root_scale[b]
            for j in range(1, NUM_JOINTS):
                p = _PARENTS[j - 1]
                dx = joints[i, j, 0] - joints[i, p, 0]
                dy = joints[i, j, 1] - joints[i, p, 1]
                dz = joints[i, j, 2] - joints[i, p, 2]
                norm = np.sqrt(dx * dx + dy * dy + dz * dz)
                out[i, j, 0] = out[i, p, 0] + bone_length[j] * (dx / norm)
                out[i, j, 1] = out[i, p, 1] + bone_length[j] * (dy / norm)
                out[i, j, 2] = out[i, p, 2] + bone_length[j] * (dz / norm)
            for j in range(NUM_JOINTS):
                y = out[i, j, 1]
                if y < lowest or y != y:  # a NaN stays the minimum, as in np.minimum
                    lowest = y
        floor[b] = lowest


@_jit
def _canonicalize_kernel(positions, starts, ends, cos, sin, floor, out):
    """Move clip b's first root to the XZ origin, turn it by (cos[b], sin[b]) about +y, lift it by -floor[b]."""
    for b in range(len(starts)):
        x0, z0 = positions[starts[b], 0, 0], positions[starts[b], 0, 2]
        for i in range(starts[b], ends[b]):
            for j in range(NUM_JOINTS):
                x = positions[i, j, 0] - x0
                z = positions[i, j, 2] - z0
                out[i, j, 0] = cos[b] * x + sin[b] * z
                out[i, j, 1] = positions[i, j, 1] - floor[b]
                out[i, j, 2] = cos[b] * z - sin[b] * x


@_jit
def _forward_rows(p, out):
    """Horizontal forward direction up x unit(across) = (across_z, 0, -across_x) / |across| of every
    frame, as rows out[0] (z) and out[1] (x); its y row is zero."""
    r_hip, l_hip, r_shoulder, l_shoulder = FACE_JOINTS
    for i in range(len(p)):
        ax = (p[i, l_hip, 0] - p[i, r_hip, 0]) + (p[i, r_shoulder, 0] - p[i, l_shoulder, 0])
        ay = (p[i, l_hip, 1] - p[i, r_hip, 1]) + (p[i, r_shoulder, 1] - p[i, l_shoulder, 1])
        az = (p[i, l_hip, 2] - p[i, r_hip, 2]) + (p[i, r_shoulder, 2] - p[i, l_shoulder, 2])
        norm = np.sqrt(ax * ax + ay * ay + az * az)
        out[0, i] = az / norm
        out[1, i] = -(ax / norm)


@_jit
def _pad_nearest(x, starts, ends, radius, out):
    """Rows x (K, N) of clips laid end to end, each clip padded with ``radius`` copies of its edge
    frames on both sides, into out (K, N + 2 radius B)."""
    o = 0
    for b in range(len(starts)):
        n = ends[b] - starts[b]
        for t in range(n + 2 * radius):
            i = starts[b] + min(max(t - radius, 0), n - 1)
            for k in range(x.shape[0]):
                out[k, o] = x[k, i]
            o += 1


@_jit
def _rotation_6d_row(positions, i, half_cos, half_sin, bone_q, out, m, offset):
    """HumanML3D IK of frame i: local rotations of joints 1..21 as 6D, into out[m, offset:offset + 126].

    half_cos, half_sin: cos and sin of half the root yaw; bone_q (21, 4) is scratch space."""
    for j in range(1, NUM_JOINTS):  # global rotation of each bone: the shortest arc u -> v
        p = _PARENTS[j - 1]
        vx = positions[i, j, 0] - positions[i, p, 0]
        vy = positions[i, j, 1] - positions[i, p, 1]
        vz = positions[i, j, 2] - positions[i, p, 2]
        norm = np.sqrt(vx * vx + vy * vy + vz * vz)
        vx, vy, vz = vx / norm, vy / norm, vz / norm
        ux, uy, uz = _REST[j - 1, 0], _REST[j - 1, 1], _REST[j - 1, 2]
        gw = 1.0 + ux * vx + uy * vy + uz * vz  # (1 + u.v, u x v), normalised
        gx, gy, gz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        norm2 = gw * gw + gx * gx + gy * gy + gz * gz
        if norm2 < 1e-20:  # bone exactly opposite its rest direction (HumanML3D: NaN): a half turn
            gx, gy, gz = _HALF_TURN_AXES[j - 1, 0], _HALF_TURN_AXES[j - 1, 1], _HALF_TURN_AXES[j - 1, 2]
            norm2 = 1.0
        inv_norm = 1.0 / np.sqrt(norm2)
        bone_q[j - 1, 0] = gw * inv_norm
        bone_q[j - 1, 1] = gx * inv_norm
        bone_q[j - 1, 2] = gy * inv_norm
        bone_q[j - 1, 3] = gz * inv_norm
    for j in range(1, NUM_JOINTS):  # local rotation conj(parent) * bone; the root's is the yaw (cos h, 0, sin h, 0)
        k = _IK_PARENTS[j - 1]
        if k == 0:
            pw, px, py, pz = half_cos, 0.0, half_sin, 0.0
        else:
            pw, px, py, pz = bone_q[k - 1, 0], bone_q[k - 1, 1], bone_q[k - 1, 2], bone_q[k - 1, 3]
        gw, gx, gy, gz = bone_q[j - 1, 0], bone_q[j - 1, 1], bone_q[j - 1, 2], bone_q[j - 1, 3]
        w = pw * gw + px * gx + py * gy + pz * gz
        x = pw * gx - px * gw - py * gz + pz * gy
        y = pw * gy + px * gz - py * gw - pz * gx
        z = pw * gz - px * gy + py * gx - pz * gw
        o = offset + 6 * (j - 1)  # the first two columns of its rotation matrix
        out[m, o] = 1.0 - 2.0 * (y * y + z * z)
        out[m, o + 1] = 2.0 * (x * y + z * w)
        out[m, o + 2] = 2.0 * (x * z - y * w)
        out[m, o + 3] = 2.0 * (x * y - z * w)
        out[m, o + 4] = 1.0 - 2.0 * (x * x + z * z)
        out[m, o + 5] = 2.0 * (y * z + x * w)


@_jit
def _rotations_6d_kernel(positions, half_cos, half_sin, out):
    bone_q = np.empty((NUM_JOINTS - 1, 4))
    for i in range(len(positions)):
        _rotation_6d_row(positions, i, half_cos[i], half_sin[i], bone_q, out, i, 0)


@_jit
def _features_kernel(positions, starts, ends, cos, sin, half_cos, half_sin, rot_vel, feet_threshold,
                     out):
    """The 263 features of every frame i with a next frame in its clip, into row i - b of out.

    cos, sin: of the root yaw per frame; half_cos, half_sin, rot_vel: per output row."""
    rv, lin, height, ric, rot6d, vel, feet = _FEATURE_OFFSETS
    bone_q = np.empty((NUM_JOINTS - 1, 4))
    for b in range(len(starts)):
        for i in range(starts[b], ends[b] - 1):
            m = i - b
            c, s = cos[i], sin[i]
            # Root: rotation velocity, linear velocity in the next frame's root frame, height.
            out[m, rv] = rot_vel[m]
            dx = positions[i + 1, 0, 0] - positions[i, 0, 0]
            dz = positions[i + 1, 0, 2] - positions[i, 0, 2]
            out[m, lin] = cos[i + 1] * dx + sin[i + 1] * dz
            out[m, lin + 1] = cos[i + 1] * dz - sin[i + 1] * dx
            out[m, height] = positions[i, 0, 1]
            # Root-invariant positions of joints 1..21: relative to the root's xz, in the root's frame.
            for j in range(1, NUM_JOINTS):
                lx = positions[i, j, 0] - positions[i, 0, 0] * 1.0
                lz = positions[i, j, 2] - positions[i, 0, 2] * 1.0
                o = ric + 3 * (j - 1)
                out[m, o] = c * lx + s * lz
                out[m, o + 1] = positions[i, j, 1] - positions[i, 0, 1] * 0.0
                out[m, o + 2] = c * lz - s * lx
            _rotation_6d_row(positions, i, half_cos[m], half_sin[m], bone_q, out, m, rot6d)
            # Local velocities of all 22 joints in the root's frame, and foot contacts.
            for j in range(NUM_JOINTS):
                sx = positions[i + 1, j, 0] - positions[i, j, 0]
                sy = positions[i + 1, j, 1] - positions[i, j, 1]
                sz = positions[i + 1, j, 2] - positions[i, j, 2]
                out[m, vel + 3 * j] = c * sx + s * sz
                out[m, vel + 3 * j + 1] = sy
                out[m, vel + 3 * j + 2] = c * sz - s * sx
            for f in range(len(_FEET)):
                j = _FEET[f]
                fx = positions[i + 1, j, 0] - positions[i, j, 0]
                fy = positions[i + 1, j, 1] - positions[i, j, 1]
                fz = positions[i + 1, j, 2] - positions[i, j, 2]
                out[m, feet + f] = 1.0 if fx * fx + fy * fy + fz * fz < feet_threshold else 0.0


# ----------------------------------------------------------------------------- the steps on kernel positions


def _bounds(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ends = np.cumsum(lengths)
    return ends - lengths, ends


def _retarget(positions: np.ndarray, lengths: np.ndarray, target_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``retarget`` of kernel positions, and the floor (lowest y) of every clip."""
    bone_length = np.linalg.norm(np.asarray(target_offsets, dtype=np.float64), axis=-1)
    starts, ends = _bounds(lengths)
    first = positions[starts]
    legs = list(LEG_BONES)
    src_leg = np.linalg.norm(first[:, legs] - first[:, [PARENTS[j] for j in legs]], axis=-1).sum(axis=-1)
    scale = bone_length[legs].sum() / src_leg
    out, floor = np.empty_like(positions), np.empty(len(lengths))
    _retarget_kernel(positions, starts, ends, scale, bone_length, out, floor)
    return out, floor


def _canonicalize(positions: np.ndarray, lengths: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """``canonicalize`` of kernel positions whose clips' lowest y values are ``floor``."""
    starts, ends = _bounds(lengths)
    first = positions[starts]
    r_hip, l_hip, r_shoulder, l_shoulder = FACE_JOINTS
    across = (first[:, r_hip] - first[:, l_hip]) + (first[:, r_shoulder] - first[:, l_shoulder])
    yaw = _facing_yaw(_forward(across))
    out = np.empty_like(positions)
    _canonicalize_kernel(positions, starts, ends, np.cos(yaw), np.sin(yaw), floor, out)
    return out


def _smooth_per_clip(x: np.ndarray, lengths: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (mode ``nearest``) of rows (K, N) along time, restarting at every clip.

    One scipy pass over the clips laid end to end, each padded with copies of its edge frames as
    wide as the kernel's radius: every output sums exactly the values (and in the same order) that a
    pass over that clip alone would, so the result is bit-identical to filtering clip by clip."""
    radius = int(4.0 * float(sigma) + 0.5)  # gaussian_filter1d's default truncate=4.0
    starts, ends = _bounds(lengths)
    padded = np.empty((len(x), x.shape[1] + 2 * radius * len(lengths)))
    _pad_nearest(np.ascontiguousarray(x, dtype=np.float64), starts, ends, radius, padded)
    smooth = gaussian_filter1d(padded, sigma, axis=-1, mode="nearest")
    inside = np.arange(x.shape[1]) + radius + 2 * radius * np.repeat(np.arange(len(lengths)), lengths)
    return np.take(smooth, inside, axis=1)


def _root_yaw(positions: np.ndarray, lengths: np.ndarray, sigma: float) -> np.ndarray:
    """``root_yaw`` of kernel positions."""
    forward = np.empty((2, len(positions)))
    _forward_rows(positions, forward)
    smooth = _smooth_per_clip(forward, lengths, sigma)
    yaw = np.arctan2(-smooth[0], smooth[1])
    yaw[_bounds(lengths)[0]] = 0.0
    return yaw


def _features_into(positions: np.ndarray, lengths: np.ndarray, feet_threshold: float, fix_wrap: bool,
                   out: np.ndarray) -> None:
    """``features_from_positions`` of kernel positions, written into out (N-B, 263)."""
    src, dst = _pairs(lengths)
    yaw = _root_yaw(positions, lengths, FACING_SMOOTH_SIGMA)
    half = 0.5 * yaw[src]
    starts, ends = _bounds(lengths)
    _features_kernel(positions, starts, ends, np.cos(yaw), np.sin(yaw), np.cos(half), np.sin(half),
                     root_rotation_velocity(yaw, src, dst, fix_wrap), float(feet_threshold), out)


# ----------------------------------------------------------------------------- the steps


def retarget(joints: np.ndarray, lengths: np.ndarray, target_offsets: np.ndarray = TARGET_OFFSETS) -> np.ndarray:
    """HumanML3D's ``uniform_skeleton``: keep every bone direction, set bone lengths to the target's.

    The root trajectory is scaled by the ratio of lower-leg lengths (target / clip's frame 0).
    Equivalent to the published IK then FK with the target offsets (each offset is a raw unit
    direction times a bone length)."""
    return _retarget(_positions(joints), np.asarray(lengths, dtype=np.int64), target_offsets)[0]


def canonicalize(positions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Floor at y=0 (lowest joint of the clip), first root at the XZ origin, first frame facing +Z."""
    positions, lengths = _positions(positions), np.asarray(lengths, dtype=np.int64)
    floor = np.minimum.reduceat(positions[:, :, 1].min(axis=1), _bounds(lengths)[0])
    return _canonicalize(positions, lengths, floor)


def foot_contacts(positions: np.ndarray, lengths: np.ndarray, threshold: float = FEET_THRESHOLD) -> np.ndarray:
    """Contact labels (N-B, 4) for feet (7, 10, 8, 11): squared displacement to the next frame < threshold."""
    src, dst = _pairs(lengths)
    feet = list(LEFT_FOOT + RIGHT_FOOT)
    step = positions[dst][:, feet] - positions[src][:, feet]
    return ((step * step).sum(axis=-1) < threshold).astype(np.float64)


def root_yaw(positions: np.ndarray, lengths: np.ndarray, sigma: float = FACING_SMOOTH_SIGMA) -> np.ndarray:
    """Per-frame root rotation (N,) as the yaw angle turning the smoothed facing direction onto +Z.

    As HumanML3D's ``inverse_kinematics_np(smooth_forward=True)``: its across vector is
    (joint 1 - joint 2) + (joint 17 - joint 16) (the hip names are swapped relative to
    process_file), the forward vectors are smoothed over time (Gaussian, ``sigma`` frames), and
    the first frame of each clip is set to the identity (the motion already faces +Z there)."""
    return _root_yaw(_positions(positions), np.asarray(lengths, dtype=np.int64), sigma)


def joint_rotations_6d(positions: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """HumanML3D IK: local rotations (N, 21, 6) of joints 1..21 in continuous 6D.

    Each bone's global rotation is the shortest arc from its rest direction to its direction in
    the frame; the local rotation is relative to its IK parent's global rotation (the root's is
    the yaw rotation)."""
    half = 0.5 * np.asarray(yaw, dtype=np.float64)
    out = np.empty((len(positions), (NUM_JOINTS - 1) * 6))
    _rotations_6d_kernel(_positions(positions), np.cos(half), np.sin(half), out)
    return out.reshape(len(positions), NUM_JOINTS - 1, 6)


def root_rotation_velocity(yaw: np.ndarray, src: np.ndarray, dst: np.ndarray, fix_wrap: bool = False) -> np.ndarray:
    """Root rotation velocity feature (M,): the half-angle of the yaw step from frame src to dst.

    HumanML3D stores arcsin of the y part of q[dst] q[src]^-1, i.e. arcsin(sin(half-angle step)).
    When the facing crosses +-180 degrees between two frames, that step is near +-90 degrees and
    arcsin flips its sign (a 3-degree turn is stored as -3 degrees). ``fix_wrap`` instead takes
    the half-angle step modulo 180 degrees (q and -q are the same rotation), which stays correct;
    both agree everywhere else."""
    step = 0.5 * (yaw[dst] - yaw[src])
    if fix_wrap:
        return step - np.pi * np.round(step / np.pi)
    return np.arcsin(np.sin(step))


def features_from_positions(
    positions: np.ndarray, lengths: np.ndarray, feet_threshold: float = FEET_THRESHOLD, fix_wrap: bool = False
) -> np.ndarray:
    """The 263-d features (N-B, 263) float64 of canonicalised positions (N, 22, 3) (floor, origin, +Z)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.empty((len(positions) - len(lengths), FEATURE_DIM))
    _features_into(_positions(positions), lengths, feet_threshold, fix_wrap, out)
    return out


def _chunks(lengths: np.ndarray, chunk_frames: int) -> list[tuple[int, int]]:
    """Consecutive clip ranges [b0, b1) of about ``chunk_frames`` frames each (at least one clip)."""
    ranges, b0, total = [], 0, 0
    for b, n in enumerate(lengths):
        total += int(n)
        if total >= chunk_frames:
            ranges.append((b0, b + 1))
            b0, total = b + 1, 0
    if b0 < len(lengths):
        ranges.append((b0, len(lengths)))
    return ranges


def extract_features_packed(
    joints: np.ndarray,
    lengths: np.ndarray,
    feet_threshold: float = FEET_THRESHOLD,
    target_offsets: np.ndarray = TARGET_OFFSETS,
    fix_wrap: bool = False,
    chunk_frames: int = CHUNK_FRAMES,
) -> np.ndarray:
    """HumanML3D ``process_file`` on packed clips: joints (N, 22, 3) -> features (N-B, 263) float32.

    Clips are processed in chunks of about ``chunk_frames`` frames (the work arrays stay small and,
    with ``keep_heap``, in the process's heap between chunks); the work is float64 throughout,
    written once into the float32 result. The bytes do not depend on the chunking."""
    keep_heap()
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1 or (lengths < 2).any() or lengths.sum() != len(joints):
        raise ValueError("lengths must be >= 2 per clip and sum to the number of frames")
    ends = np.concatenate([[0], np.cumsum(lengths)])
    out = np.empty((len(joints) - len(lengths), FEATURE_DIM), dtype=np.float32)
    for b0, b1 in _chunks(lengths, chunk_frames):
        chunk = _positions(joints[ends[b0]:ends[b1]])
        positions, floor = _retarget(chunk, lengths[b0:b1], target_offsets)
        positions = _canonicalize(positions, lengths[b0:b1], floor)
        _features_into(positions, lengths[b0:b1], feet_threshold, fix_wrap, out[ends[b0] - b0:ends[b1] - b1])
    return out


def extract_features_batch(
    clips: Sequence[np.ndarray],
    feet_threshold: float = FEET_THRESHOLD,
    target_offsets: np.ndarray = TARGET_OFFSETS,
    fix_wrap: bool = False,
) -> list[np.ndarray]:
    """Features (T_i-1, 263) float32 of many clips (T_i, >=22, 3), computed in one vectorised pass."""
    joints, lengths = pack([np.asarray(c)[:, :NUM_JOINTS] for c in clips])
    features = extract_features_packed(joints, lengths, feet_threshold, target_offsets, fix_wrap)
    return unpack(features, lengths - 1)


def extract_features(
    joints: np.ndarray,
    feet_threshold: float = FEET_THRESHOLD,
    target_offsets: np.ndarray = TARGET_OFFSETS,
    fix_wrap: bool = False,
) -> np.ndarray:
    """Features (T-1, 263) float32 of one clip of joint positions (T, >=22, 3)."""
    joints = np.asarray(joints)[:, :NUM_JOINTS]
    return extract_features_packed(joints, np.array([len(joints)]), feet_threshold, target_offsets, fix_wrap)


# ----------------------------------------------------------------------------- the inverse


def _root_yaw_and_xz(features: np.ndarray, lengths: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Integrate root rotation and linear velocities: yaw (..., T) and root xz (..., T, 2)."""
    rot_vel = features[..., 0]
    if lengths is None:
        half = np.cumsum(rot_vel, axis=-1) - rot_vel  # the half-angle before each frame
    else:
        half = _segment_cumsum(rot_vel, lengths) - rot_vel
    yaw = 2.0 * half  # the feature is a half-angle: a quaternion's y part is sin(yaw / 2)
    vel = np.zeros(features.shape[:-1] + (3,), dtype=features.dtype)
    vel[..., 0], vel[..., 2] = features[..., 1], features[..., 2]
    if lengths is None:  # velocity t-1 enters at frame t, in frame t's root orientation
        vel = np.concatenate([np.zeros_like(vel[..., :1, :]), vel[..., :-1, :]], axis=-2)
    else:
        vel = np.concatenate([np.zeros_like(vel[:1]), vel[:-1]], axis=0)
        vel[_starts(lengths)] = 0.0
    step = _rotate_y(vel, np.cos(-yaw), np.sin(-yaw))
    xz = np.cumsum(step, axis=-2) if lengths is None else _segment_cumsum(step, lengths)
    return yaw, xz[..., [0, 2]]


def recover_from_ric(features: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Joint positions (..., T, 22, 3) from features (..., T, 263) (HumanML3D ``recover_from_ric``).

    With ``lengths``, features are packed clips (N, 263) and the integration restarts per clip."""
    features = np.asarray(features, dtype=np.float64)
    yaw, xz = _root_yaw_and_xz(features, lengths)
    ric = features[..., RIC].reshape(features.shape[:-1] + (NUM_JOINTS - 1, 3))
    joints = _rotate_y(ric, np.cos(-yaw)[..., None], np.sin(-yaw)[..., None])
    joints[..., 0] += xz[..., None, 0]
    joints[..., 2] += xz[..., None, 1]
    root = np.stack([xz[..., 0], features[..., 3], xz[..., 1]], axis=-1)
    return np.concatenate([root[..., None, :], joints], axis=-2)
