"""Torch twin of motion.data.features.recover_from_ric: joints from HumanML3D features on any device.

Padded batches (B, T, 263) are fine: the integration runs forward in time, so padding after a
clip's last frame never changes its joints.
"""
from __future__ import annotations

import torch

from motion.core.parts import RIC
from motion.core.skeleton import NUM_JOINTS


def _rotate_y(v: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate vectors (..., 3) about +y by angles given as cos/sin broadcast to v[..., 0]."""
    x, y, z = v.unbind(-1)
    return torch.stack([cos * x + sin * z, y, cos * z - sin * x], dim=-1)


def recover_root(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Root yaw (..., T) and root position (..., T, 3) integrated from features (..., T, 263)."""
    rot_vel = features[..., 0]
    yaw = 2.0 * (torch.cumsum(rot_vel, dim=-1) - rot_vel)  # the feature is a half-angle step
    zero = torch.zeros_like(rot_vel[..., :1])
    vel_x = torch.cat([zero, features[..., :-1, 1]], dim=-1)  # velocity t-1 enters at frame t
    vel_z = torch.cat([zero, features[..., :-1, 2]], dim=-1)
    cos, sin = torch.cos(yaw), torch.sin(yaw)
    x = torch.cumsum(cos * vel_x - sin * vel_z, dim=-1)  # rotate by -yaw into the world frame
    z = torch.cumsum(sin * vel_x + cos * vel_z, dim=-1)
    return yaw, torch.stack([x, features[..., 3], z], dim=-1)


def recover_from_ric(features: torch.Tensor) -> torch.Tensor:
    """Joint positions (..., T, 22, 3) from features (..., T, 263) (HumanML3D ``recover_from_ric``)."""
    yaw, root = recover_root(features)
    ric = features[..., RIC].reshape(features.shape[:-1] + (NUM_JOINTS - 1, 3))
    joints = _rotate_y(ric, torch.cos(-yaw)[..., None], torch.sin(-yaw)[..., None])
    offset = torch.stack([root[..., 0], torch.zeros_like(root[..., 0]), root[..., 2]], dim=-1)
    return torch.cat([root[..., None, :], joints + offset[..., None, :]], dim=-2)
