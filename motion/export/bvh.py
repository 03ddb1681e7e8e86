"""BVH export of 22-joint positions (analytic IK).

Export: joint positions (T, 22, 3) in the HumanML3D frame (y up, the body faces +z, metres, 20 fps)
become a BVH skeleton named after ``motion.core.skeleton`` with one rotation per joint, solved
analytically from the positions, so the file replays the motion in any BVH viewer (Blender,
bvhacker, MotionBuilder). Conventions of the files written here:

- Axes are HumanML3D's (y up, +z forward, +x the body's left); no axis is negated (LGTM's
  export negates x, which mirrors the body). Units are metres times ``scale`` (100 gives cm).
- Rest pose: a T-pose. Bones point along HumanML3D's unit rest directions (``RAW_OFFSETS``)
  except the arms, which point sideways (+x left, -x right) instead of down, so that an arm
  raised overhead is a 90 degree swing, far from the 180 degree singularity of a swing.
  Bone lengths are the motion's own (median over frames). The children of the two joints with
  several children (pelvis: hips + spine1; spine3: collars + neck) keep their median position in
  the parent's solved frame, so they replay exactly and not only up to a T-pose idealisation.
- Rotations: single-child joints get the swing that turns the rest bone into the observed bone,
  expressed in the parent's frame (no twist of their own). The pelvis and spine3 get a full
  frame from two directions (left-minus-right child across, up child up), so the root heading
  is exact for any facing, including a body that faces away from the camera or turns around.
- Channels: the root has ``Xposition Yposition Zposition`` then its rotation channels, every
  other joint three rotation channels, in degrees. A joint's local rotation is the product of its
  channels in the listed order (``Zrotation Yrotation Xrotation`` is R = Rz @ Ry @ Rx, intrinsic,
  as in CMU's files). The order is chosen per joint (``ROTATION_ORDERS``) so that gimbal lock
  (middle angle at +-90 degrees) lies where the motion never goes: the root is ``YXZ`` (heading
  outermost: an upright body turning about y is never near the lock, unlike ``ZYX``, whose lock
  is a body facing +-x), and every other joint has its bone's own axis in the middle (``ZYX`` for
  y bones: spine, legs, neck; ``ZXY`` for x bones: collars and arms; ``XZY`` for the ankles, whose
  foot bone is along z), where a swing never reaches the lock short of a 180 degree swing.
  Angles are made continuous over time (no 360 degree jumps, no flips between the two Euler
  solutions of the same rotation).
The reader that checks these files by forward kinematics is a test oracle (``tests/oracles/bvh_reader.py``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from motion.core.io import atomic_path
from motion.core.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS, RAW_OFFSETS

EPS = 1e-9
ROTATION_ORDER = "ZYX"  # default Euler order of the helpers: R = Rz @ Ry @ Rx
END_SITE_FRACTION = 0.5  # End Site of a leaf joint: this fraction of the leaf's own bone, same direction

# Unit rest directions of the T-pose: HumanML3D's raw offsets with the arms turned sideways.
REST_DIRECTIONS = RAW_OFFSETS.copy()
for _name in ("left_shoulder", "left_elbow", "left_wrist"):
    REST_DIRECTIONS[JOINT_INDEX[_name]] = (1.0, 0.0, 0.0)
for _name in ("right_shoulder", "right_elbow", "right_wrist"):
    REST_DIRECTIONS[JOINT_INDEX[_name]] = (-1.0, 0.0, 0.0)

CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c in range(NUM_JOINTS) if PARENTS[c] == j) for j in range(NUM_JOINTS))

# Joints with several children: (left child, right child, up child) that define their frame.
FRAME_CHILDREN: dict[int, tuple[int, int, int]] = {
    JOINT_INDEX["pelvis"]: (JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"], JOINT_INDEX["spine1"]),
    JOINT_INDEX["spine3"]: (JOINT_INDEX["left_collar"], JOINT_INDEX["right_collar"], JOINT_INDEX["neck"]),
}


def _rotation_order(j: int) -> str:
    if PARENTS[j] < 0:
        return "YXZ"
    if len(CHILDREN[j]) != 1:
        return "ZYX"
    axis = "XYZ"[int(np.argmax(np.abs(REST_DIRECTIONS[CHILDREN[j][0]])))]
    return {"X": "ZXY", "Y": "ZYX", "Z": "XZY"}[axis]


# BVH rotation channel order of each joint (its bone's axis in the middle; heading outermost at the root).
ROTATION_ORDERS: tuple[str, ...] = tuple(_rotation_order(j) for j in range(NUM_JOINTS))


# ----------------------------------------------------------------------------- rotation helpers

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), EPS)


def _skew(v: np.ndarray) -> np.ndarray:
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = np.zeros_like(x)
    return np.stack([o, -z, y, z, o, -x, -y, x, o], axis=-1).reshape(v.shape[:-1] + (3, 3))


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation matrices (..., 3, 3) turning directions a (..., 3) onto b (..., 3)."""
    a, b = np.broadcast_arrays(_unit(np.asarray(a, np.float64)), _unit(np.asarray(b, np.float64)))
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    k = _skew(v)
    eye = np.broadcast_to(np.eye(3), k.shape)
    rot = eye + k + (k @ k) / np.maximum(1.0 + c, EPS)[..., None, None]
    opposite = c < -1.0 + 1e-8
    if np.any(opposite):  # half turn about any axis orthogonal to a
        ao = a[opposite]
        helper = np.eye(3)[np.argmin(np.abs(ao), axis=-1)]
        axis = _unit(np.cross(ao, helper))
        rot[opposite] = 2.0 * axis[..., :, None] * axis[..., None, :] - np.eye(3)
    return rot


def frame_from_two(across: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rotation (..., 3, 3) whose x axis is ``across`` and whose y axis is ``up`` made orthogonal to it
    (the identity where the two are parallel or zero)."""
    x = _unit(across)
    z = np.cross(x, up)
    degenerate = np.linalg.norm(z, axis=-1) < 1e-8
    z = _unit(z)
    y = np.cross(z, x)
    rot = np.stack([x, y, z], axis=-1)
    rot[degenerate] = np.eye(3)
    return rot


def euler_to_matrix(angles: np.ndarray, order: str = ROTATION_ORDER) -> np.ndarray:
    """Matrices (..., 3, 3) of intrinsic Euler angles (..., 3) in radians: R = R_order[0] @ R_order[1] @ R_order[2]."""
    angles = np.asarray(angles, dtype=np.float64)
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for i, axis in enumerate(order.upper()):
        out = out @ _axis_rotation(axis, angles[..., i])
    return out


def _axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, one = np.zeros_like(angle), np.ones_like(angle)
    rows = {"X": [one, o, o, o, c, -s, o, s, c], "Y": [c, o, s, o, one, o, -s, o, c],
            "Z": [c, -s, o, s, c, o, o, o, one]}[axis]
    return np.stack(rows, axis=-1).reshape(angle.shape + (3, 3))


def matrix_to_euler(rot: np.ndarray, order: str = ROTATION_ORDER) -> np.ndarray:
    """Intrinsic Euler angles (..., 3) in radians of matrices (..., 3, 3), inverse of euler_to_matrix."""
    flat = rot.reshape(-1, 3, 3)
    angles = Rotation.from_matrix(flat).as_euler(order.upper())
    return angles.reshape(rot.shape[:-2] + (3,))


def continuous_euler(angles: np.ndarray) -> np.ndarray:
    """Make Tait-Bryan angles (T, ..., 3) continuous in time: per frame pick, of the two equivalent
    solutions (a, b, c) and (a + pi, pi - b, c + pi), each shifted by whole turns, the one nearest
    the previous frame."""
    angles = np.asarray(angles, dtype=np.float64)
    out = np.empty_like(angles)
    out[0] = angles[0]
    alt = angles + np.array([np.pi, 0.0, np.pi])
    alt[..., 1] = np.pi - angles[..., 1]
    two_pi = 2.0 * np.pi
    for t in range(1, len(angles)):
        prev = out[t - 1]
        best, best_cost = None, None
        for cand in (angles[t], alt[t]):
            cand = cand + two_pi * np.round((prev - cand) / two_pi)
            cost = np.abs(cand - prev).sum(axis=-1)
            if best is None:
                best, best_cost = cand, cost
            else:
                better = cost < best_cost
                best = np.where(better[..., None], cand, best)
                best_cost = np.minimum(cost, best_cost)
        out[t] = best
    return out


# ----------------------------------------------------------------------------- IK from positions

def _check_joints(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or len(joints) < 1:
        raise ValueError(f"joints must have shape (T, {NUM_JOINTS}, 3) with T >= 1, got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("joints contain NaN or inf")
    return joints


def _frame(joints: np.ndarray, j: int) -> np.ndarray:
    """World frame (T, 3, 3) of a multi-child joint; frames where it is undefined repeat the last defined one."""
    left, right, up = FRAME_CHILDREN[j]
    across, upward = joints[:, left] - joints[:, right], joints[:, up] - joints[:, j]
    frames = frame_from_two(across, upward)
    defined = np.linalg.norm(np.cross(_unit(across), upward), axis=-1) >= 1e-8
    if not defined.all() and defined.any():
        last = np.maximum.accumulate(np.where(defined, np.arange(len(defined)), -1))
        last[last < 0] = int(np.argmax(defined))  # before the first defined frame: the first one
        frames = frames[last]
    return frames


def bvh_offsets(joints: np.ndarray) -> np.ndarray:
    """Rest offsets (22, 3) of a motion (T, 22, 3): T-pose directions with the motion's median bone
    lengths; children of the pelvis and spine3 at their median position in the parent's frame
    (medians: a few broken frames do not shrink the skeleton)."""
    joints = _check_joints(joints)
    offsets = np.zeros((NUM_JOINTS, 3))
    frames = {j: _frame(joints, j) for j in FRAME_CHILDREN}
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        bone = joints[:, j] - joints[:, p]
        if p in frames:
            offsets[j] = np.median(np.einsum("tji,tj->ti", frames[p], bone), axis=0)
        else:
            offsets[j] = REST_DIRECTIONS[j] * np.median(np.linalg.norm(bone, axis=-1))
    return offsets


def end_site_offsets(offsets: np.ndarray) -> dict[int, np.ndarray]:
    """End Site offsets of the leaf joints: END_SITE_FRACTION of each leaf's own rest bone."""
    return {j: END_SITE_FRACTION * offsets[j] for j in range(NUM_JOINTS) if not CHILDREN[j]}


def positions_to_rotations(joints: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Analytic IK: local rotations (T, 22, 3, 3) and root translation (T, 3) that replay ``joints``
    on a skeleton with rest ``offsets`` (22, 3) (bone directions exact, lengths as in ``offsets``)."""
    joints = _check_joints(joints)
    offsets = np.asarray(offsets, dtype=np.float64)
    frames = len(joints)
    local = np.broadcast_to(np.eye(3), (frames, NUM_JOINTS, 3, 3)).copy()
    world = local.copy()
    for j in range(NUM_JOINTS):  # parents come before children in the joint order
        p = PARENTS[j]
        parent_world = world[:, p] if p >= 0 else np.broadcast_to(np.eye(3), (frames, 3, 3))
        kids = CHILDREN[j]
        if j in FRAME_CHILDREN:
            left, right, up = FRAME_CHILDREN[j]
            rest = frame_from_two(offsets[left] - offsets[right], offsets[up])
            world[:, j] = _frame(joints, j) @ rest.T
            local[:, j] = np.swapaxes(parent_world, -1, -2) @ world[:, j]
        elif len(kids) == 1:
            c = kids[0]
            bone_in_parent = np.einsum("tji,tj->ti", parent_world, joints[:, c] - joints[:, j])
            local[:, j] = rotation_between(offsets[c], bone_in_parent)
            world[:, j] = parent_world @ local[:, j]
        elif kids:
            raise ValueError(f"joint {JOINT_NAMES[j]} has several children but no frame definition")
        else:
            world[:, j] = parent_world
    return local, joints[:, 0] - offsets[0]


def bvh_text(joints: np.ndarray, fps: float = 20.0, offsets: np.ndarray | None = None, scale: float = 1.0,
             names: tuple[str, ...] = JOINT_NAMES) -> str:
    """The BVH file (hierarchy + motion) that replays joint positions (T, 22, 3) at ``fps``."""
    joints = _check_joints(joints)
    offsets = bvh_offsets(joints) if offsets is None else np.asarray(offsets, dtype=np.float64)
    local, root = positions_to_rotations(joints, offsets)
    euler = np.stack([matrix_to_euler(local[:, j], ROTATION_ORDERS[j]) for j in range(NUM_JOINTS)], axis=1)
    degrees = np.degrees(continuous_euler(euler))  # (T, 22, 3) in each joint's ROTATION_ORDERS
    ends = end_site_offsets(offsets)
    lines = ["HIERARCHY"]

    def vec(v: np.ndarray) -> str:
        return " ".join(f"{x * scale:.6f}" for x in v)

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        rot_channels = " ".join(f"{axis}rotation" for axis in ROTATION_ORDERS[j])
        if PARENTS[j] < 0:
            lines.append(f"{pad}ROOT {names[j]}")
            channels = f"CHANNELS 6 Xposition Yposition Zposition {rot_channels}"
        else:
            lines.append(f"{pad}JOINT {names[j]}")
            channels = f"CHANNELS 3 {rot_channels}"
        lines.extend([f"{pad}{{", f"{pad}\tOFFSET {vec(offsets[j])}", f"{pad}\t{channels}"])
        for c in CHILDREN[j]:
            emit(c, depth + 1)
        if j in ends:
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {vec(ends[j])}", f"{pad}\t}}"])
        lines.append(f"{pad}}}")

    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in CHILDREN[j]:
            visit(c)

    emit(0, 0)
    visit(0)
    lines += ["MOTION", f"Frames: {len(joints)}", f"Frame Time: {1.0 / fps:.6f}"]
    for t in range(len(joints)):
        values = [f"{x * scale:.6f}" for x in root[t]]
        values += [f"{a:.6f}" for j in order for a in degrees[t, j]]
        lines.append(" ".join(values))
    return "\n".join(lines) + "\n"


def write_bvh(path: str | Path, joints: np.ndarray, fps: float = 20.0, offsets: np.ndarray | None = None,
              scale: float = 1.0) -> None:
    """Write joint positions (T, 22, 3) as a BVH file, atomically."""
    text = bvh_text(joints, fps, offsets, scale)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
