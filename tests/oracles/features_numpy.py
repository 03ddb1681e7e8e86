"""``motion.data.features`` written as plain numpy array expressions, one clip at a time: a test oracle.

The extractor's numba kernels claim the same bytes as these expressions (the same IEEE operations
in the same order, no fast-math); the transcendental functions are numpy's in both. This is the
vectorised formulation the kernels replaced (December 2026), kept only to pin that claim: a kernel
compiled with fast-math, or an operation reordered, changes bytes here first.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from motion.core.parts import FEATURE_DIM, FOOT_CONTACT, LOCAL_VEL, RIC, ROOT_HEIGHT, ROOT_LIN_VEL, ROOT_ROT_VEL, ROT6D
from motion.core.skeleton import FACE_JOINTS, LEFT_FOOT, NUM_JOINTS, PARENTS, RAW_OFFSETS, RIGHT_FOOT, TARGET_OFFSETS
from motion.data.features import (
    _HALF_TURN_AXES,
    _IK_PARENTS,
    FACING_SMOOTH_SIGMA,
    FEET_THRESHOLD,
    LEG_BONES,
    root_rotation_velocity,
)

BONE_PARENTS = list(PARENTS[1:])


def _norm3(v: np.ndarray) -> np.ndarray:
    return np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1] + v[..., 2] * v[..., 2])


def retarget(a: np.ndarray, target_offsets: np.ndarray = TARGET_OFFSETS) -> np.ndarray:
    """One clip (T, 22, 3) float64: bone directions kept, lengths the target's, root scaled by the legs."""
    bone_length = np.linalg.norm(np.asarray(target_offsets, dtype=np.float64), axis=-1)
    legs = list(LEG_BONES)
    src_leg = np.linalg.norm(a[0, legs] - a[0, [PARENTS[j] for j in legs]], axis=-1).sum(axis=-1)
    scale = bone_length[legs].sum() / src_leg
    d = a[:, 1:] - a[:, BONE_PARENTS]
    bones = bone_length[1:, None] * (d / _norm3(d)[..., None])
    out = np.empty_like(a)
    out[:, 0] = a[:, 0] * scale
    for j in range(1, NUM_JOINTS):
        out[:, j] = out[:, PARENTS[j]] + bones[:, j - 1]
    return out


def canonicalize(a: np.ndarray) -> np.ndarray:
    """One clip: floor at y=0, first root at the XZ origin, first frame facing +Z."""
    r_hip, l_hip, r_shoulder, l_shoulder = FACE_JOINTS
    first = a[0]
    across = (first[r_hip] - first[l_hip]) + (first[r_shoulder] - first[l_shoulder])
    unit = across / _norm3(across)
    yaw = np.arctan2(-unit[2], -unit[0])  # turns forward = up x unit = (unit_z, 0, -unit_x) onto +Z
    cos, sin = np.cos(yaw), np.sin(yaw)
    x, z = a[..., 0] - first[0, 0], a[..., 2] - first[0, 2]
    return np.stack([cos * x + sin * z, a[..., 1] - a[..., 1].min(), cos * z - sin * x], axis=-1)


def root_yaw(c: np.ndarray, sigma: float = FACING_SMOOTH_SIGMA) -> np.ndarray:
    r_hip, l_hip, r_shoulder, l_shoulder = FACE_JOINTS
    across = (c[:, l_hip] - c[:, r_hip]) + (c[:, r_shoulder] - c[:, l_shoulder])
    norm = _norm3(across)
    forward = np.stack([across[:, 2] / norm, -(across[:, 0] / norm)])
    smooth = gaussian_filter1d(forward, sigma, axis=-1, mode="nearest")
    yaw = np.arctan2(-smooth[0], smooth[1])
    yaw[0] = 0.0
    return yaw


def rotations_6d(p: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Local joint rotations (T, 21, 6) of positions p (T, 22, 3) with root yaw (T,)."""
    v = p[:, 1:] - p[:, BONE_PARENTS]
    v = v / _norm3(v)[..., None]
    u = RAW_OFFSETS[1:]
    ux, uy, uz, vx, vy, vz = u[:, 0], u[:, 1], u[:, 2], v[..., 0], v[..., 1], v[..., 2]
    g = np.stack([1.0 + ux * vx + uy * vy + uz * vz, uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx], -1)
    norm2 = g[..., 0] * g[..., 0] + g[..., 1] * g[..., 1] + g[..., 2] * g[..., 2] + g[..., 3] * g[..., 3]
    opposite = norm2 < 1e-20
    g[..., 1:] = np.where(opposite[..., None], _HALF_TURN_AXES, g[..., 1:])
    g = g * (1.0 / np.sqrt(np.where(opposite, 1.0, norm2)))[..., None]
    half = 0.5 * yaw
    root = np.stack([np.cos(half), np.zeros_like(half), np.sin(half), np.zeros_like(half)], -1)
    pw, px, py, pz = np.moveaxis(np.concatenate([root[:, None], g], axis=1)[:, _IK_PARENTS], -1, 0)
    gw, gx, gy, gz = np.moveaxis(g, -1, 0)
    w = pw * gw + px * gx + py * gy + pz * gz
    x = pw * gx - px * gw - py * gz + pz * gy
    y = pw * gy + px * gz - py * gw - pz * gx
    z = pw * gz - px * gy + py * gx - pz * gw
    return np.stack([1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y + z * w), 2.0 * (x * z - y * w),
                     2.0 * (x * y - z * w), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z + x * w)], -1)


def features(c: np.ndarray, feet_threshold: float = FEET_THRESHOLD, fix_wrap: bool = False) -> np.ndarray:
    """The 263 features (T-1, 263) float64 of one canonical clip c (T, 22, 3)."""
    yaw = root_yaw(c)
    cos, sin = np.cos(yaw), np.sin(yaw)
    p, q = c[:-1], c[1:]
    out = np.empty((len(p), FEATURE_DIM))
    frames = np.arange(len(c))
    out[:, ROOT_ROT_VEL] = root_rotation_velocity(yaw, frames[:-1], frames[1:], fix_wrap)[:, None]
    dx, dz = q[:, 0, 0] - p[:, 0, 0], q[:, 0, 2] - p[:, 0, 2]
    out[:, ROOT_LIN_VEL] = np.stack([cos[1:] * dx + sin[1:] * dz, cos[1:] * dz - sin[1:] * dx], -1)
    out[:, ROOT_HEIGHT] = p[:, 0, 1:2]
    cs, ss = cos[:-1, None], sin[:-1, None]
    lx, lz = p[:, 1:, 0] - p[:, :1, 0] * 1.0, p[:, 1:, 2] - p[:, :1, 2] * 1.0
    ric = np.stack([cs * lx + ss * lz, p[:, 1:, 1] - p[:, :1, 1] * 0.0, cs * lz - ss * lx], -1)
    out[:, RIC] = ric.reshape(len(p), -1)
    out[:, ROT6D] = rotations_6d(p, yaw[:-1]).reshape(len(p), -1)
    s = q - p
    vel = np.stack([cs * s[..., 0] + ss * s[..., 2], s[..., 1], cs * s[..., 2] - ss * s[..., 0]], -1)
    out[:, LOCAL_VEL] = vel.reshape(len(p), -1)
    f = s[:, list(LEFT_FOOT + RIGHT_FOOT)]
    out[:, FOOT_CONTACT] = f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1] + f[..., 2] * f[..., 2] < feet_threshold
    return out


def extract(joints: np.ndarray, feet_threshold: float = FEET_THRESHOLD, fix_wrap: bool = False) -> np.ndarray:
    """``extract_features`` of one clip (T, 22, 3): features (T-1, 263) float32."""
    c = canonicalize(retarget(np.asarray(joints, dtype=np.float64)[:, :NUM_JOINTS]))
    return features(c, feet_threshold, fix_wrap).astype(np.float32)
