"""Differentiable features -> joints in torch: the packed diffusion layout, de-normalisation and RIC recovery.

The torch twin of ``motion.data.features.recover_from_ric`` (the library stays numpy-only), so a loss on
joint positions can be differentiated with respect to the predicted clean features of the diffusion
(constraint guidance, ``models.guidance``). Axes as HumanML3D: y up, metres; joints (..., T, 22, 3).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from motion.core.parts import PART_INDICES, PART_NAMES, RIC
from motion.core.skeleton import NUM_JOINTS

# packed[..., k] == features[..., PACK_ORDER[k]]: the parts concatenated in PART_NAMES order (models.diffusion).
PACK_ORDER: np.ndarray = np.concatenate([PART_INDICES[p] for p in PART_NAMES])
# features[..., k] == packed[..., UNPACK_ORDER[k]]
UNPACK_ORDER: np.ndarray = np.argsort(PACK_ORDER)


def packed_to_features(packed: Tensor) -> Tensor:
    """Packed part features (..., 263) in PART_NAMES order -> HumanML3D's feature order (..., 263)."""
    return packed[..., torch.as_tensor(UNPACK_ORDER, device=packed.device)]


def features_to_packed(features: Tensor) -> Tensor:
    """HumanML3D-ordered features (..., 263) -> the packed part layout of the diffusion (inverse of the above)."""
    return features[..., torch.as_tensor(PACK_ORDER, device=features.device)]


def _rotate_y(v: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate vectors (..., 3) about +y; cos/sin broadcast against v[..., 0]."""
    x, y, z = v.unbind(-1)
    return torch.stack([cos * x + sin * z, y, cos * z - sin * x], dim=-1)


def recover_joints(features: Tensor) -> Tensor:
    """Joint positions (..., T, 22, 3) from de-normalised features (..., T, 263), differentiably.

    As HumanML3D's ``recover_from_ric``: the root yaw integrates the half-angle rotation velocity, the root
    xz integrates the local linear velocity of the previous frame turned into the world, the root height is
    read directly and the other 21 joints are their root-relative (ric) positions turned by the root yaw.
    Padding after a clip's last frame never changes its earlier joints (integration runs forward in time).
    """
    rot_vel = features[..., 0]
    yaw = 2.0 * (torch.cumsum(rot_vel, dim=-1) - rot_vel)
    zero = torch.zeros_like(rot_vel[..., :1])
    vel_x = torch.cat([zero, features[..., :-1, 1]], dim=-1)
    vel_z = torch.cat([zero, features[..., :-1, 2]], dim=-1)
    cos, sin = torch.cos(-yaw), torch.sin(-yaw)
    root_x = torch.cumsum(cos * vel_x + sin * vel_z, dim=-1)
    root_z = torch.cumsum(cos * vel_z - sin * vel_x, dim=-1)
    ric = features[..., RIC].reshape(features.shape[:-1] + (NUM_JOINTS - 1, 3))
    joints = _rotate_y(ric, cos[..., None], sin[..., None])
    offset = torch.stack([root_x, torch.zeros_like(root_x), root_z], dim=-1)[..., None, :]
    root = torch.stack([root_x, features[..., 3], root_z], dim=-1)[..., None, :]
    return torch.cat([root, joints + offset], dim=-2)


def packed_to_joints(packed: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """HumanML3D-normalised packed part features (..., T, 263) -> joints (..., T, 22, 3), differentiably.

    ``mean``/``std`` (263,) are the HumanML3D Mean/Std in feature order (the features stage's files)."""
    return recover_joints(packed_to_features(packed) * std + mean)
