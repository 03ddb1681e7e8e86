"""The per-frame body pose being composed: local joint rotations, root yaw, pelvis pitch, jump lift."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from motion.core.skeleton import JOINT_INDEX, NUM_JOINTS
from motion.data.synthetic.body import Body


@dataclass
class Segment:
    """One action placed on the clip's time line (seconds from the clip start) with its parameters."""

    action: str
    start: float
    end: float
    params: dict = field(default_factory=dict)


@dataclass
class Track:
    """Pose curves of one motion at the source frame rate, in the canonical y-up body frame.

    ``rotations`` are SMPL local rotations (identity = rest pose, arms hanging); the root rotation
    is composed later as yaw (about y) times pelvis pitch (about x). ``lift`` is the height above
    ground contact (jump flight).
    """

    t: np.ndarray
    body: Body
    rotations: np.ndarray = field(init=False)
    yaw: np.ndarray = field(init=False)
    pelvis_pitch: np.ndarray = field(init=False)
    lift: np.ndarray = field(init=False)
    owners: dict[int, list[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.t)
        self.rotations = np.tile(np.eye(3), (n, NUM_JOINTS, 1, 1))
        self.yaw = np.zeros(n)
        self.pelvis_pitch = np.zeros(n)
        self.lift = np.zeros(n)

    def apply(self, joint: str, matrices: np.ndarray, owner: str) -> None:
        """Compose local rotations (N, 3, 3) onto ``joint`` (parent side first).

        Actions that share a joint (a bend's hip compensation, then a kick) do so at different times,
        where the other is the identity, so the order of composition does not matter.
        """
        j = JOINT_INDEX[joint]
        self.owners.setdefault(j, []).append(owner)
        self.rotations[:, j] = matrices @ self.rotations[:, j]
