"""LGTM's six body parts and the exact partition of the 263-d HumanML3D features among them.

Layout of the 263 dims (HumanML3D): root angular velocity (1), root linear velocity xz (2), root
height (1), ric positions of joints 1..21 (63), 6D rotations of joints 1..21 (126), local
velocities of joints 0..21 (66), foot contacts left (2) and right (2).
Each part vector is its joints' ric triplets, then their 6D rotations, then their velocities,
then the part's extras (root data for the torso, foot contacts for the legs), as in LGTM.
"""
from __future__ import annotations

from typing import TypeVar

import numpy as np

FEATURE_DIM = 263

# One canonical part order, used everywhere (LGTM's declaration order).
PART_NAMES: tuple[str, ...] = ("head", "left_arm", "right_arm", "torso", "left_leg", "right_leg")

# The seven text slots of a caption, in this order everywhere: the whole-body caption, then one text per part.
# Each slot has its own TMR (train_tmr@<slot>) and its own LGTM text latent.
WHOLE_BODY = "whole_body"
TEXT_SLOTS: tuple[str, ...] = (WHOLE_BODY,) + PART_NAMES

# Joints whose ric / rotation / velocity entries belong to each part.
PART_JOINTS: dict[str, tuple[int, ...]] = {
    "head": (12, 15),
    "left_arm": (13, 16, 18, 20),
    "right_arm": (14, 17, 19, 21),
    "torso": (3, 6, 9),  # the root (0) has no ric/rot entries; its data is the torso's extras
    "left_leg": (1, 4, 7, 10),
    "right_leg": (2, 5, 8, 11),
}

# Feature groups (half-open slices of the 263 dims), as used for HumanML3D's mean/std.
ROOT_ROT_VEL = slice(0, 1)
ROOT_LIN_VEL = slice(1, 3)
ROOT_HEIGHT = slice(3, 4)
RIC = slice(4, 67)
ROT6D = slice(67, 193)
LOCAL_VEL = slice(193, 259)
FOOT_CONTACT = slice(259, 263)
FEATURE_GROUPS: tuple[slice, ...] = (ROOT_ROT_VEL, ROOT_LIN_VEL, ROOT_HEIGHT, RIC, ROT6D, LOCAL_VEL, FOOT_CONTACT)


def ric_index(joint: int) -> list[int]:
    """Feature dims of the root-relative position of ``joint`` (1..21)."""
    start = 4 + 3 * (joint - 1)
    return list(range(start, start + 3))


def rot_index(joint: int) -> list[int]:
    """Feature dims of the 6D rotation of ``joint`` (1..21)."""
    start = 67 + 6 * (joint - 1)
    return list(range(start, start + 6))


def vel_index(joint: int) -> list[int]:
    """Feature dims of the local velocity of ``joint`` (0..21)."""
    start = 193 + 3 * joint
    return list(range(start, start + 3))


_PART_EXTRAS: dict[str, list[int]] = {
    "head": [],
    "left_arm": [],
    "right_arm": [],
    "torso": list(range(0, 4)) + vel_index(0),
    "left_leg": [259, 260],
    "right_leg": [261, 262],
}


def _part_index(part: str) -> list[int]:
    joints = PART_JOINTS[part]
    idx: list[int] = []
    for j in joints:
        idx += ric_index(j)
    for j in joints:
        idx += rot_index(j)
    for j in joints:
        idx += vel_index(j)
    return idx + _PART_EXTRAS[part]


# Indices into the 263 dims for each part, in part-vector order.
PART_INDICES: dict[str, np.ndarray] = {p: np.array(_part_index(p), dtype=np.int64) for p in PART_NAMES}
PART_DIMS: dict[str, int] = {p: len(i) for p, i in PART_INDICES.items()}

assert PART_DIMS == {"head": 24, "left_arm": 48, "right_arm": 48, "torso": 43, "left_leg": 50, "right_leg": 50}
assert sorted(np.concatenate(list(PART_INDICES.values())).tolist()) == list(range(FEATURE_DIM))

Array = TypeVar("Array")


def split_parts(features: Array) -> dict[str, Array]:
    """Split (..., 263) features (numpy array or torch tensor) into the six part vectors."""
    return {p: features[..., PART_INDICES[p].tolist()] for p in PART_NAMES}


def merge_parts(parts: dict[str, Array]) -> Array:
    """Reassemble the six part vectors into (..., 263) features: the exact inverse of split_parts."""
    first = parts[PART_NAMES[0]]
    shape = tuple(first.shape[:-1]) + (FEATURE_DIM,)
    if isinstance(first, np.ndarray):
        out = np.empty(shape, dtype=first.dtype)
    else:  # torch.Tensor
        out = first.new_empty(shape)
    for p in PART_NAMES:
        out[..., PART_INDICES[p].tolist()] = parts[p]
    return out
