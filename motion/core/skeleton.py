"""The 22-joint SMPL / HumanML3D skeleton: the one source of truth for joint indices.

Joint order, parents and kinematic chains follow HumanML3D (``paramUtil.t2m_*``) and LGTM
(``lgtm/dataset/HumanML3D.py``). Axes: y up, the body faces +z, its left is +x.
"""
from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Parent of each joint (-1 for the root).
PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

# HumanML3D's kinematic chains (t2m_kinematic_chain): right leg, left leg, spine, right arm, left arm.
KINEMATIC_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)

# Unit rest-pose bone directions (HumanML3D t2m_raw_offsets).
RAW_OFFSETS = np.array(
    [[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
     [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
     [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0]],
    dtype=np.float64,
)

# Bone lengths (metres) of HumanML3D's target skeleton: the 22 joint offsets that HumanML3D's
# motion_representation derives from frame 0 of clip 000021 (KIT "walk in a circle").
# Source: HumanML3D motion_representation.ipynb, ``tgt_skel.get_offsets_joints(example_data[0])``;
# these numbers are facts of that public skeleton, recomputed with the published code.
_TARGET_BONE_LENGTHS = np.array(
    [0.0, 0.10307393, 0.10988342, 0.13156824, 0.39362326, 0.39018813, 0.14319022, 0.4324331,
     0.42564353, 0.05736474, 0.14338185, 0.14941902, 0.21936005, 0.13748674, 0.14338286,
     0.10303922, 0.13161404, 0.12298444, 0.2568399, 0.2630917, 0.26601195, 0.26987645],
    dtype=np.float64,
)
# Rest offsets of the target skeleton, each joint relative to its parent, shape (22, 3).
TARGET_OFFSETS: np.ndarray = (RAW_OFFSETS * _TARGET_BONE_LENGTHS[:, None]).astype(np.float32)

# Joints HumanML3D uses to find the facing direction: right hip, left hip, right shoulder, left shoulder.
FACE_JOINTS: tuple[int, int, int, int] = (2, 1, 17, 16)
# Foot joints for contact labels: (ankle, foot) on each side.
LEFT_FOOT: tuple[int, int] = (7, 10)
RIGHT_FOOT: tuple[int, int] = (8, 11)
FOOT_JOINTS: tuple[int, ...] = LEFT_FOOT + RIGHT_FOOT

# Left/right chains swapped when mirroring a motion (HumanML3D's M-prefixed copies).
RIGHT_CHAIN: tuple[int, ...] = (2, 5, 8, 11, 14, 17, 19, 21)
LEFT_CHAIN: tuple[int, ...] = (1, 4, 7, 10, 13, 16, 18, 20)


def mirror_permutation() -> np.ndarray:
    """Joint permutation that swaps every left joint with its right twin (centre joints stay)."""
    perm = np.arange(NUM_JOINTS)
    for left, right in zip(LEFT_CHAIN, RIGHT_CHAIN):
        perm[left], perm[right] = right, left
    return perm


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Mirror joint positions (..., 22, 3) as HumanML3D does: negate x, then swap left and right."""
    out = joints.copy()
    out[..., 0] *= -1
    return out[..., mirror_permutation(), :]
