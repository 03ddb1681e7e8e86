"""Synthetic subjects: body size <-> betas, the scaled built-in skeleton and its rest-pose landmarks.

A synthetic subject's body is HumanML3D's target skeleton (``motion.core.skeleton.TARGET_OFFSETS``)
scaled uniformly. The scale is stored in the AMASS-style ``betas`` vector: ``betas[0]`` encodes it
(``scale = 1 + BETA_SCALE_STEP * betas[0]``), the other 15 betas are zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from motion.core.kinematics import forward_kinematics
from motion.core.skeleton import JOINT_INDEX, NUM_JOINTS, TARGET_OFFSETS

NUM_BETAS = 16
BETA_SCALE_STEP = 0.05  # body scale change per unit of betas[0]


def body_scale_from_betas(betas: np.ndarray) -> float:
    """Uniform body scale of a synthetic subject: ``1 + 0.05 * betas[0]`` (betas[0] = 2 -> 10 % taller)."""
    return float(1.0 + BETA_SCALE_STEP * float(np.asarray(betas, dtype=np.float64).reshape(-1)[0]))


def betas_from_body_scale(scale: float) -> np.ndarray:
    """The (16,) betas vector that ``body_scale_from_betas`` maps back to ``scale``."""
    betas = np.zeros(NUM_BETAS, dtype=np.float64)
    betas[0] = (scale - 1.0) / BETA_SCALE_STEP
    return betas


@dataclass(frozen=True)
class Body:
    """The built-in skeleton scaled by ``scale``, with rest-pose landmarks in the canonical frame."""

    scale: float

    @cached_property
    def offsets(self) -> np.ndarray:
        """Rest offsets (22, 3) of this body, each joint relative to its parent."""
        return TARGET_OFFSETS.astype(np.float64) * self.scale

    @cached_property
    def rest(self) -> np.ndarray:
        """Rest-pose joint positions (22, 3) with the pelvis at the origin (arms hanging, facing +z)."""
        rotations = np.broadcast_to(np.eye(3), (NUM_JOINTS, 3, 3))
        return forward_kinematics(rotations, np.zeros(3), self.offsets)

    def chest_relative(self, joint: str) -> np.ndarray:
        """Rest position of ``joint`` relative to the chest (spine3), in the chest's frame."""
        return self.rest[JOINT_INDEX[joint]] - self.rest[JOINT_INDEX["spine3"]]

    def arm_lengths(self, side: str) -> tuple[float, float]:
        """Upper-arm and forearm lengths of the ``side`` ('left' | 'right') arm."""
        elbow, wrist = JOINT_INDEX[f"{side}_elbow"], JOINT_INDEX[f"{side}_wrist"]
        return float(np.linalg.norm(self.offsets[elbow])), float(np.linalg.norm(self.offsets[wrist]))
