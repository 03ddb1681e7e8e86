"""Analytic two-bone inverse kinematics for the arms of the built-in skeleton.

Targets are wrist positions in the chest (spine3) frame of the rest torso. The solution is a pair
of local rotations (shoulder, elbow) in SMPL's convention; since local rotations are relative to
the parent, they stay valid when the torso moves. The elbow is a hinge about its local x axis.
"""
from __future__ import annotations

import numpy as np

from motion.data.synthetic.body import Body
from motion.data.synthetic.curves import MIRROR, mirror_rotation, rot_x


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _perp(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Component of ``v`` orthogonal to the unit vector ``axis``."""
    return v - np.sum(v * axis, axis=-1, keepdims=True) * axis


def two_bone_ik(targets: np.ndarray, poles: np.ndarray, upper: float, lower: float) -> tuple[np.ndarray, np.ndarray]:
    """Shoulder and elbow rotations (T, 3, 3) putting the wrist at ``targets`` (T, 3), relative to the
    shoulder, for an arm hanging along -y at rest; ``poles`` (T, 3) say where the elbow points."""
    targets, poles = np.broadcast_arrays(np.asarray(targets, float), np.asarray(poles, float))
    dist = np.linalg.norm(targets, axis=-1, keepdims=True)
    reach = np.clip(dist, abs(upper - lower) + 1e-4, (upper + lower) * (1.0 - 1e-6))
    d = _unit(targets)
    n = _perp(poles, d)
    n = np.where(np.linalg.norm(n, axis=-1, keepdims=True) < 1e-6, _perp(np.array([0.0, 0.0, -1.0]), d), n)
    n = _unit(n)
    cos_a = np.clip((upper**2 + reach**2 - lower**2) / (2.0 * upper * reach), -1.0, 1.0)
    elbow = upper * (cos_a * d + np.sqrt(1.0 - cos_a**2) * n)
    u = elbow / upper
    v = _unit(d * reach - elbow)
    fold = _perp(v, u)
    fold = np.where(np.linalg.norm(fold, axis=-1, keepdims=True) < 1e-6, _perp(-n, u), fold)
    z = _unit(fold)
    y = -u
    x = np.cross(y, z)
    shoulder = np.stack([x, y, z], axis=-1)  # columns: images of the local axes
    v_local = np.einsum("tji,tj->ti", shoulder, v)
    elbow_rot = rot_x(np.arctan2(-v_local[:, 2], -v_local[:, 1]))
    return shoulder, elbow_rot


def solve_arm(body: Body, side: str, wrist_targets: np.ndarray, poles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local (shoulder, elbow) rotations of ``side``'s arm reaching chest-frame ``wrist_targets`` (T, 3).

    Targets and poles are given in left-arm space (x = outward); the right arm's are mirrored.
    """
    upper, lower = body.arm_lengths(side)
    shoulder = body.chest_relative(f"{side}_shoulder")
    if side == "right":
        shoulder = shoulder @ MIRROR  # solve the right arm in mirrored (left-arm) space
    rot_s, rot_e = two_bone_ik(np.asarray(wrist_targets) - shoulder, poles, upper, lower)
    if side == "right":
        rot_s, rot_e = mirror_rotation(rot_s), mirror_rotation(rot_e)
    return rot_s, rot_e
