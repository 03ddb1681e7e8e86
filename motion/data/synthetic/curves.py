"""Time curves and rotation helpers for procedural motion: envelopes, keyframes, axis rotations.

Axes are the canonical body frame of the built-in skeleton: y up, the body faces +z, its left is +x.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# Reflection through the body's mid-sagittal plane (x -> -x): turns a left-side pose into the right one.
MIRROR = np.diag([-1.0, 1.0, 1.0])


def smoothstep(x: np.ndarray) -> np.ndarray:
    """C1 ease from 0 to 1 on [0, 1] (clamped outside)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def envelope(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """Weight that eases from 0 to 1 over ``ramp`` seconds after ``start`` and back to 0 before ``end``."""
    ramp = max(min(ramp, 0.5 * (end - start)), 1e-3)
    return smoothstep((t - start) / ramp) * smoothstep((end - t) / ramp)


def keyframes(u: np.ndarray, times: list[float], values: list[float]) -> np.ndarray:
    """Piecewise smoothstep interpolation of scalar ``values`` at increasing ``times`` (held outside)."""
    out = np.full(np.shape(u), float(values[0]))
    for (t0, v0), (t1, v1) in zip(zip(times[:-1], values[:-1]), zip(times[1:], values[1:])):
        inside = (u >= t0) & (u <= t1)
        out[inside] = v0 + (v1 - v0) * smoothstep((u[inside] - t0) / (t1 - t0))
    out[u > times[-1]] = values[-1]
    return out


def bump(u: np.ndarray, start: float, end: float) -> np.ndarray:
    """Half-sine bump that is 0 outside [start, end] and 1 at its middle."""
    x = (u - start) / (end - start)
    return np.where((x > 0) & (x < 1), np.sin(np.pi * np.clip(x, 0, 1)), 0.0)


def rot_x(angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about +x by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape(np.shape(angle) + (3, 3))


def rot_y(angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about +y by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape(np.shape(angle) + (3, 3))


def rot_z(angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about +z by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(np.shape(angle) + (3, 3))


def mirror_rotation(matrices: np.ndarray) -> np.ndarray:
    """The rotation seen in a mirror through the x = 0 plane (left-side pose -> right-side pose)."""
    return MIRROR @ matrices @ MIRROR


def matrix_to_axis_angle(matrices: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to axis-angle vectors (..., 3) with angles in [0, pi]."""
    flat = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
    return Rotation.from_matrix(flat).as_rotvec().reshape(matrices.shape[:-2] + (3,))


def slerp_directions(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spherical interpolation between unit vectors ``a`` and ``b`` (..., 3) by weight ``w`` (...)."""
    a, b = np.broadcast_arrays(a, b)
    w = np.asarray(w)[..., None]
    cos = np.clip(np.sum(a * b, axis=-1, keepdims=True), -1.0, 1.0)
    omega = np.arccos(cos)
    sin = np.sin(omega)
    small = sin < 1e-6
    safe = np.where(small, 1.0, sin)
    out = np.where(small, (1 - w) * a + w * b, (np.sin((1 - w) * omega) * a + np.sin(w * omega) * b) / safe)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)
