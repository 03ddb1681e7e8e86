"""Forward kinematics of the built-in 22-joint skeleton from SMPL-style axis-angle rotations."""
from __future__ import annotations

import numpy as np

from motion.core.skeleton import NUM_JOINTS, PARENTS, TARGET_OFFSETS


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: (..., 3) axis-angle vectors to (..., 3, 3) rotation matrices."""
    aa = np.asarray(axis_angle, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(angle, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zeros = np.zeros_like(x)
    k = np.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    s = np.sin(angle)[..., None]
    c = np.cos(angle)[..., None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + s * k + (1.0 - c) * (k @ k)


def forward_kinematics(
    rotations: np.ndarray, translation: np.ndarray, offsets: np.ndarray = TARGET_OFFSETS
) -> np.ndarray:
    """Joint positions (..., 22, 3) from local rotation matrices (..., 22, 3, 3), root translation
    (..., 3) and rest offsets (22, 3) or (..., 22, 3), as the SMPL kinematic tree composes them."""
    offsets = np.asarray(offsets, dtype=np.float64)
    batch = rotations.shape[:-3]
    offsets = np.broadcast_to(offsets, batch + (NUM_JOINTS, 3))
    world_rot = np.empty(rotations.shape, dtype=np.float64)
    joints = np.empty(batch + (NUM_JOINTS, 3), dtype=np.float64)
    world_rot[..., 0, :, :] = rotations[..., 0, :, :]
    joints[..., 0, :] = translation + offsets[..., 0, :]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        world_rot[..., j, :, :] = world_rot[..., p, :, :] @ rotations[..., j, :, :]
        bone = np.einsum("...ij,...j->...i", world_rot[..., p, :, :], offsets[..., j, :])
        joints[..., j, :] = joints[..., p, :] + bone
    return joints


def smpl_forward_kinematics(
    poses: np.ndarray, trans: np.ndarray, offsets: np.ndarray = TARGET_OFFSETS
) -> np.ndarray:
    """Joints (T, 22, 3) of the built-in skeleton from AMASS ``poses`` (T, >=66) and ``trans`` (T, 3)."""
    body = np.asarray(poses, dtype=np.float64)[..., : 3 * NUM_JOINTS].reshape(poses.shape[:-1] + (NUM_JOINTS, 3))
    return forward_kinematics(axis_angle_to_matrix(body), np.asarray(trans, dtype=np.float64), offsets)
