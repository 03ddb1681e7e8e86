"""HumanML3D's 263-d motion features from joint positions, and back (``recover_from_ric``).

Re-implements ``process_file`` of HumanML3D's ``motion_representation`` (Guo et al., CVPR 2022),
vectorised over many clips at once. Clips of different lengths are *packed*: their frames are
concatenated into one (N, 22, 3) array and ``lengths`` (B,) says where each clip ends. A clip of
T frames gives T-1 feature frames (velocities need the next frame).

Steps (all per clip): retarget to the target skeleton, put on the floor, move the first root to
the XZ origin, turn the first frame to face +Z, detect foot contacts, estimate the per-frame root
(yaw) rotation from a smoothed facing direction, IK to 6D joint rotations, root-invariant joint
positions (ric) and local velocities. The 263 dims are laid out as in motion.core.parts.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
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

CHUNK_FRAMES = 1024  # frames per vectorised pass: work arrays of ~170 kB stay in L2 (in the heap: keep_heap)

_PARENTS = np.array(PARENTS[1:])


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


# ----------------------------------------------------------------------------- component-major layout
#
# The steps work on joint positions split into components: a tuple (x, y, z) of contiguous (N, J)
# float64 arrays, so every elementwise pass streams through memory, and with chunks of CHUNK_FRAMES
# frames every temporary stays small; ``keep_heap`` keeps freed temporaries in the process (glibc
# would otherwise return them to the kernel and page-fault them in again on every pass). The public
# step functions take and return the usual (N, J, 3) layout; the arithmetic (every operation and its
# order) is the same in both layouts, so both give the same bytes.

Components = tuple[np.ndarray, np.ndarray, np.ndarray]


def _components(joints: np.ndarray) -> Components:
    """(N, J, 3) positions -> (x, y, z), each (N, J) contiguous float64."""
    joints = np.asarray(joints, dtype=np.float64)
    return tuple(np.ascontiguousarray(joints[..., k]) for k in range(3))  # type: ignore[return-value]


def _interleaved(c: Components) -> np.ndarray:
    """(x, y, z) -> (N, J, 3) contiguous."""
    return np.stack(c, axis=-1)


def _take(c: Components, index: np.ndarray, axis: int) -> Components:
    """The same elements of every component (contiguous copies)."""
    return tuple(np.take(a, index, axis=axis) for a in c)  # type: ignore[return-value]


def _depth_levels() -> list[tuple[np.ndarray, np.ndarray]]:
    """Joints grouped by depth in the kinematic tree (root excluded), each with its parents: forward
    kinematics level by level composes every joint exactly as joint-by-joint order does."""
    depth = [0] * NUM_JOINTS
    for j in range(1, NUM_JOINTS):
        depth[j] = depth[PARENTS[j]] + 1
    levels = []
    for d in range(1, max(depth) + 1):
        joints = np.array([j for j in range(NUM_JOINTS) if depth[j] == d])
        levels.append((joints, np.array([PARENTS[j] for j in joints])))
    return levels


_LEVELS = _depth_levels()


def _first_frames(c: Components, starts: np.ndarray) -> np.ndarray:
    """Frame 0 of every clip as (B, J, 3)."""
    return np.stack([a[starts] for a in c], axis=-1)


def _retarget_c(c: Components, lengths: np.ndarray, target_offsets: np.ndarray) -> Components:
    """``retarget`` on components."""
    bone_length = np.linalg.norm(np.asarray(target_offsets, dtype=np.float64), axis=-1)
    first = _first_frames(c, _starts(lengths))
    legs = list(LEG_BONES)
    src_leg = np.linalg.norm(first[:, legs] - first[:, [PARENTS[j] for j in legs]], axis=-1).sum(axis=-1)
    scale = bone_length[legs].sum() / src_leg
    dx, dy, dz = (a[:, 1:] - np.take(a, _PARENTS, axis=1) for a in c)  # bones (N, 21)
    norm = np.sqrt(dx * dx + dy * dy + dz * dz)
    root_scale = np.repeat(scale, lengths)
    out = []
    for a, d in zip(c, (dx, dy, dz)):
        d /= norm  # unit directions
        bones = np.ascontiguousarray((bone_length[1:] * d).T)  # (21, N): joint-major for the level loop
        o = np.empty((NUM_JOINTS, len(a)))
        o[0] = a[:, 0] * root_scale
        for joints, parents in _LEVELS:
            o[joints] = o[parents] + bones[joints - 1]
        out.append(np.ascontiguousarray(o.T))
    return tuple(out)  # type: ignore[return-value]


def _canonicalize_c(c: Components, lengths: np.ndarray) -> Components:
    """``canonicalize`` on components."""
    starts = _starts(lengths)
    floor = np.minimum.reduceat(c[1].min(axis=1), starts)
    first = _first_frames(c, starts)
    r_hip, l_hip, r_shoulder, l_shoulder = FACE_JOINTS
    across = (first[:, r_hip] - first[:, l_hip]) + (first[:, r_shoulder] - first[:, l_shoulder])
    yaw = _facing_yaw(_forward(across))
    cos, sin = np.repeat(np.cos(yaw), lengths)[:, None], np.repeat(np.sin(yaw), lengths)[:, None]
    x = c[0] - np.repeat(first[:, 0, 0], lengths)[:, None]
    z = c[2] - np.repeat(first[:, 0, 2], lengths)[:, None]
    return cos * x + sin * z, c[1] - np.repeat(floor, lengths)[:, None], cos * z - sin * x


def _smooth_per_clip(x: np.ndarray, lengths: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (mode ``nearest``) of rows (K, N) along time, restarting at every clip.

    One scipy pass over the clips laid end to end, each padded with copies of its edge frames as
    wide as the kernel's radius: every output sums exactly the values (and in the same order) that a
    pass over that clip alone would, so the result is bit-identical to filtering clip by clip."""
    radius = int(4.0 * float(sigma) + 0.5)  # gaussian_filter1d's default truncate=4.0
    ends = np.cumsum(lengths)
    starts = ends - lengths
    padded = lengths + 2 * radius
    offset = np.repeat(np.cumsum(padded) - padded, padded)
    local = np.arange(int(padded.sum())) - offset - radius  # frame of the clip, before clipping
    index = np.repeat(starts, padded) + np.clip(local, 0, np.repeat(lengths - 1, padded))
    smooth = gaussian_filter1d(np.take(x, index, axis=1), sigma, axis=-1, mode="nearest")
    keep = np.flatnonzero((local >= 0) & (local < np.repeat(lengths, padded)))
    return np.take(smooth, keep, axis=1)


def _root_yaw_c(c: Components, lengths: np.ndarray, sigma: float) -> np.ndarray:
    """``root_yaw`` on components."""
    r_hip, l_hip, r_shoulder, l_shoulder = FACE_JOINTS
    ax, ay, az = ((a[:, l_hip] - a[:, r_hip]) + (a[:, r_shoulder] - a[:, l_shoulder]) for a in c)
    norm = np.sqrt(ax * ax + ay * ay + az * az)
    # forward = up x unit(across) = (across_z, 0, -across_x); its zero y row stays zero when smoothed.
    smooth = _smooth_per_clip(np.stack([az / norm, -(ax / norm)]), lengths, sigma)
    yaw = np.arctan2(-smooth[0], smooth[1])
    yaw[np.cumsum(lengths) - lengths] = 0.0
    return yaw


def _rotations_6d_into(p: Components, yaw: np.ndarray, out: np.ndarray) -> None:
    """``joint_rotations_6d`` of component positions p (each (M, 22)), written into out (M, 21, 6)."""
    vx, vy, vz = (a[:, 1:] - np.take(a, _PARENTS, axis=1) for a in p)  # bones (M, 21)
    norm = np.sqrt(vx * vx + vy * vy + vz * vz)
    vx /= norm
    vy /= norm
    vz /= norm
    ux, uy, uz = RAW_OFFSETS[1:, 0], RAW_OFFSETS[1:, 1], RAW_OFFSETS[1:, 2]  # unit rest directions
    # Shortest arc u -> v: (1 + u.v, u x v), normalised.
    gw, gx, gy, gz = 1.0 + ux * vx + uy * vy + uz * vz, uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    norm2 = gw * gw + gx * gx + gy * gy + gz * gz
    opposite = norm2 < 1e-20  # bone exactly opposite its rest direction: HumanML3D gives NaN here
    if opposite.any():  # take the half turn about a fixed axis perpendicular to the rest direction
        gx, gy, gz = (np.where(opposite, axis, g) for axis, g in zip(_HALF_TURN_AXES.T, (gx, gy, gz)))
        norm2 = np.where(opposite, 1.0, norm2)
    inv_norm = 1.0 / np.sqrt(norm2)
    gw *= inv_norm
    gx *= inv_norm
    gy *= inv_norm
    gz *= inv_norm
    # Parent rotation of each joint: the root yaw quaternion (cos h, 0, sin h, 0) or a bone's.
    half = 0.5 * yaw[:, None]
    zero = np.zeros_like(half)
    pw = np.take(np.concatenate([np.cos(half), gw], axis=1), _IK_PARENTS, axis=1)
    px = np.take(np.concatenate([zero, gx], axis=1), _IK_PARENTS, axis=1)
    py = np.take(np.concatenate([np.sin(half), gy], axis=1), _IK_PARENTS, axis=1)
    pz = np.take(np.concatenate([zero, gz], axis=1), _IK_PARENTS, axis=1)
    # Local rotation: conj(parent) * bone.
    w = pw * gw + px * gx + py * gy + pz * gz
    x = pw * gx - px * gw - py * gz + pz * gy
    y = pw * gy + px * gz - py * gw - pz * gx
    z = pw * gz - px * gy + py * gx - pz * gw
    # First two columns of its rotation matrix.
    out[..., 0] = 1.0 - 2.0 * (y * y + z * z)
    out[..., 1] = 2.0 * (x * y + z * w)
    out[..., 2] = 2.0 * (x * z - y * w)
    out[..., 3] = 2.0 * (x * y - z * w)
    out[..., 4] = 1.0 - 2.0 * (x * x + z * z)
    out[..., 5] = 2.0 * (y * z + x * w)


def _features_into(c: Components, lengths: np.ndarray, feet_threshold: float, fix_wrap: bool,
                   out: np.ndarray) -> None:
    """``features_from_positions`` of component positions (each (N, 22)), written into out (N-B, 263)."""
    src, dst = _pairs(lengths)
    yaw = _root_yaw_c(c, lengths, FACING_SMOOTH_SIGMA)
    cos, sin = np.cos(yaw), np.sin(yaw)
    (px, py, pz), (qx, qy, qz) = _take(c, src, 0), _take(c, dst, 0)  # each frame and the next, (M, 22)
    cos_src, sin_src = cos[src, None], sin[src, None]

    # Root: rotation velocity (a half-angle), linear velocity in the next frame's root frame, height.
    out[:, ROOT_ROT_VEL] = root_rotation_velocity(yaw, src, dst, fix_wrap)[:, None]
    dx, dz = qx[:, 0] - px[:, 0], qz[:, 0] - pz[:, 0]
    cos_dst, sin_dst = cos[dst], sin[dst]
    out[:, ROOT_LIN_VEL.start] = cos_dst * dx + sin_dst * dz
    out[:, ROOT_LIN_VEL.start + 1] = cos_dst * dz - sin_dst * dx
    out[:, ROOT_HEIGHT] = py[:, 0:1]

    # Root-invariant positions of joints 1..21: relative to the root's xz, in the root's frame.
    ric = out[:, RIC].reshape(len(src), NUM_JOINTS - 1, 3)
    lx = px[:, 1:] - px[:, :1] * 1.0
    lz = pz[:, 1:] - pz[:, :1] * 1.0
    ric[..., 0] = cos_src * lx + sin_src * lz
    ric[..., 1] = py[:, 1:] - py[:, :1] * 0.0
    ric[..., 2] = cos_src * lz - sin_src * lx

    _rotations_6d_into((px, py, pz), yaw[src], out[:, ROT6D].reshape(len(src), NUM_JOINTS - 1, 6))

    sx, sy, sz = qx - px, qy - py, qz - pz  # (M, 22)
    vel = out[:, LOCAL_VEL].reshape(len(src), NUM_JOINTS, 3)
    vel[..., 0] = cos_src * sx + sin_src * sz
    vel[..., 1] = sy
    vel[..., 2] = cos_src * sz - sin_src * sx
    feet = list(LEFT_FOOT + RIGHT_FOOT)
    fx, fy, fz = sx[:, feet], sy[:, feet], sz[:, feet]
    out[:, FOOT_CONTACT] = fx * fx + fy * fy + fz * fz < feet_threshold


# ----------------------------------------------------------------------------- the steps


def retarget(joints: np.ndarray, lengths: np.ndarray, target_offsets: np.ndarray = TARGET_OFFSETS) -> np.ndarray:
    """HumanML3D's ``uniform_skeleton``: keep every bone direction, set bone lengths to the target's.

    The root trajectory is scaled by the ratio of lower-leg lengths (target / clip's frame 0).
    Equivalent to the published IK then FK with the target offsets (each offset is a raw unit
    direction times a bone length)."""
    return _interleaved(_retarget_c(_components(joints), np.asarray(lengths), target_offsets))


def canonicalize(positions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Floor at y=0 (lowest joint of the clip), first root at the XZ origin, first frame facing +Z."""
    return _interleaved(_canonicalize_c(_components(positions), np.asarray(lengths)))


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
    return _root_yaw_c(_components(positions), np.asarray(lengths), sigma)


def joint_rotations_6d(positions: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """HumanML3D IK: local rotations (N, 21, 6) of joints 1..21 in continuous 6D.

    Each bone's global rotation is the shortest arc from its rest direction to its direction in
    the frame; the local rotation is relative to its IK parent's global rotation (the root's is
    the yaw rotation). Quaternion components are kept as separate arrays (no stacking) for speed."""
    out = np.empty((len(positions), NUM_JOINTS - 1, 6))
    _rotations_6d_into(_components(positions), np.asarray(yaw, dtype=np.float64), out)
    return out


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
    lengths = np.asarray(lengths)
    out = np.empty((len(positions) - len(lengths), FEATURE_DIM))
    _features_into(_components(positions), lengths, feet_threshold, fix_wrap, out)
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

    Clips are processed in chunks of about ``chunk_frames`` frames so the work arrays stay in cache
    (and, with ``keep_heap``, in the process's heap between passes); the work is float64 throughout,
    written once into the float32 result."""
    keep_heap()
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1 or (lengths < 2).any() or lengths.sum() != len(joints):
        raise ValueError("lengths must be >= 2 per clip and sum to the number of frames")
    ends = np.concatenate([[0], np.cumsum(lengths)])
    out = np.empty((len(joints) - len(lengths), FEATURE_DIM), dtype=np.float32)
    for b0, b1 in _chunks(lengths, chunk_frames):
        chunk = _components(np.asarray(joints[ends[b0]:ends[b1], :NUM_JOINTS]))
        positions = _canonicalize_c(_retarget_c(chunk, lengths[b0:b1], target_offsets), lengths[b0:b1])
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
