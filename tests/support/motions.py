"""Synthetic joint motions and headings shared by the feature, BVH and generation tests and the benchmarks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.core.skeleton import JOINT_INDEX, NUM_JOINTS, TARGET_OFFSETS
from motion.export.bvh import euler_to_matrix
from tests.oracles.bvh_reader import parse_bvh


def synthetic_clip(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Joints (frames, 22, 3) of a smooth random motion: sinusoidal joint angles, turning walk."""
    t = np.arange(frames)[:, None, None] / 20.0
    freq = rng.uniform(0.2, 1.5, size=(1, 22, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 22, 3))
    amplitude = rng.uniform(0.0, 0.5, size=(1, 22, 3))
    axis_angle = amplitude * np.sin(2 * np.pi * freq * t + phase)
    turn = rng.uniform(-1.0, 1.0) * t[:, 0, 0]
    axis_angle[:, 0] = [0.0, 1.0, 0.0] * turn[:, None]  # the root turns about +y
    speed = rng.uniform(0.0, 1.5)
    heading = np.stack([np.sin(turn), np.zeros_like(turn), np.cos(turn)], axis=-1)
    translation = np.cumsum(heading * speed / 20.0, axis=0) + [0.0, 0.95, 0.0]
    return forward_kinematics(axis_angle_to_matrix(axis_angle), translation).astype(np.float32)


def synthetic_body(yaw: np.ndarray, seed: int = 0, amplitude: float = 0.4) -> np.ndarray:
    """A rigid body (T, 22, 3): smooth random joint rotations, root yawed by ``yaw`` (T,) radians."""
    rng = np.random.default_rng(seed)
    frames = len(yaw)
    t = np.linspace(0.0, 2 * np.pi, frames)[:, None, None]
    phase, freq = rng.uniform(0, 2 * np.pi, (1, NUM_JOINTS, 3)), rng.integers(1, 3, (1, NUM_JOINTS, 3))
    aa = amplitude * np.sin(freq * t + phase)
    aa[:, 0] = 0.0
    aa[:, 0, 1] = yaw
    trans = np.stack([0.3 * np.sin(t[:, 0, 0]), np.full(frames, 0.95), 0.2 * t[:, 0, 0]], axis=-1)
    return forward_kinematics(axis_angle_to_matrix(aa), trans, TARGET_OFFSETS)


def heading_degrees(joints: np.ndarray) -> np.ndarray:
    """Facing yaw (T,) in degrees from the hips: forward = (left hip - right hip) x up; 0 = +z."""
    across = joints[:, JOINT_INDEX["left_hip"]] - joints[:, JOINT_INDEX["right_hip"]]
    forward = np.cross(across, np.array([0.0, 1.0, 0.0]))
    return np.degrees(np.unwrap(np.arctan2(forward[:, 0], forward[:, 2])))


def root_heading_degrees(bvh_path: Path) -> np.ndarray:
    """Yaw (T,) in degrees of the BVH root's forward axis (+z in the rest pose), from its channels."""
    bvh = parse_bvh(bvh_path.read_text())
    rot = euler_to_matrix(np.radians(bvh.values[:, 3:6]), "".join(c[0] for c in bvh.channels[0][3:]))
    forward = rot[:, :, 2]
    return np.degrees(np.unwrap(np.arctan2(forward[:, 0], forward[:, 2])))
