"""Unit quaternions (w, x, y, z), vectorised over any leading shape, in numpy.

Conventions follow HumanML3D's ``common/quaternion.py`` (real part first, ``qmul(q, r)`` applies r
first, then q): the feature extraction in motion.data.features needs the same rotations, written here
as plain array arithmetic without per-call torch round trips.
"""
from __future__ import annotations

import numpy as np


def qnormalize(q: np.ndarray) -> np.ndarray:
    """Scale quaternions (..., 4) to unit length."""
    return q / np.sqrt((q * q).sum(axis=-1, keepdims=True))


def qinv(q: np.ndarray) -> np.ndarray:
    """Inverse of unit quaternions (..., 4): the conjugate."""
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q * r of quaternions (..., 4); the rotation r is applied first."""
    qw, qx, qy, qz = np.moveaxis(q, -1, 0)
    rw, rx, ry, rz = np.moveaxis(r, -1, 0)
    return np.stack(
        (
            qw * rw - qx * rx - qy * ry - qz * rz,
            qw * rx + qx * rw + qy * rz - qz * ry,
            qw * ry - qx * rz + qy * rw + qz * rx,
            qw * rz + qx * ry - qy * rx + qz * rw,
        ),
        axis=-1,
    )


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    u = q[..., 1:]
    uv = np.cross(u, v)
    return v + 2.0 * (q[..., :1] * uv + np.cross(u, uv))


def qbetween(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternions (..., 4) rotating directions v0 onto v1 (both (..., 3)).

    Undefined (NaN) for exactly opposite directions, as in HumanML3D."""
    w = np.sqrt((v0 * v0).sum(axis=-1, keepdims=True) * (v1 * v1).sum(axis=-1, keepdims=True))
    w = w + (v0 * v1).sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return qnormalize(np.concatenate([w, np.cross(v0, v1)], axis=-1))


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) (normalised on the fly)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(axis=-1)
    m = np.stack(
        (
            1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
            s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
            s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
        ),
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def quaternion_to_cont6d(q: np.ndarray) -> np.ndarray:
    """Continuous 6D rotations (..., 6) of quaternions (..., 4): the first two matrix columns."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(axis=-1)
    return np.stack(
        (
            1 - s * (y * y + z * z), s * (x * y + z * w), s * (x * z - y * w),
            s * (x * y - z * w), 1 - s * (x * x + z * z), s * (y * z + x * w),
        ),
        axis=-1,
    )


def cont6d_to_matrix(cont6d: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from 6D rotations (..., 6) by Gram-Schmidt (Zhou et al. 2019)."""
    a, b = cont6d[..., :3], cont6d[..., 3:]
    x = a / np.linalg.norm(a, axis=-1, keepdims=True)
    z = np.cross(x, b)
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)
