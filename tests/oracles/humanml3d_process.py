"""The published HumanML3D feature extraction (``process_file``), one clip at a time: a test oracle.

A faithful port of ``process_file`` / ``uniform_skeleton`` from HumanML3D's
``motion_representation.ipynb`` with the ``Skeleton`` class (``common/skeleton.py``) and the quaternion
helpers (``common/quaternion.py``) it calls (Guo et al., CVPR 2022; MIT licence). Kept as the
published code computes: every ``*_np`` quaternion helper round-trips through torch float32, the
inverse kinematics loops over kinematic chains and bones, the Gaussian smoothing runs per clip. It
is the speed baseline of ``benchmarks.bench_features`` and the parity oracle of
``motion.data.features`` (it reproduces ``../shared/reference/humanml3d/reference_process``).

Only changes: ``np.float`` (removed from numpy) is ``float``; ``torch.cross`` gets its ``dim``; a
``dtype`` argument (default float32, the published arithmetic) lets the same code run in float64.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from motion.core.skeleton import FACE_JOINTS, KINEMATIC_CHAINS, RAW_OFFSETS, TARGET_OFFSETS

FEET_THRESHOLD = 0.002
_FID_L, _FID_R = [7, 10], [8, 11]
_L_IDX1, _L_IDX2 = 5, 8


# ----------------------------------------------------------------------------- common/quaternion.py


def _qinv(q: torch.Tensor) -> torch.Tensor:
    mask = torch.ones_like(q)
    mask[..., 1:] = -mask[..., 1:]
    return q * mask


def _qnormalize(q: torch.Tensor) -> torch.Tensor:
    return q / torch.norm(q, dim=-1, keepdim=True)


def _qmul(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    original_shape = q.shape
    terms = torch.bmm(r.view(-1, 4, 1), q.view(-1, 1, 4))
    w = terms[:, 0, 0] - terms[:, 1, 1] - terms[:, 2, 2] - terms[:, 3, 3]
    x = terms[:, 0, 1] + terms[:, 1, 0] - terms[:, 2, 3] + terms[:, 3, 2]
    y = terms[:, 0, 2] + terms[:, 1, 3] + terms[:, 2, 0] - terms[:, 3, 1]
    z = terms[:, 0, 3] - terms[:, 1, 2] + terms[:, 2, 1] + terms[:, 3, 0]
    return torch.stack((w, x, y, z), dim=1).view(original_shape)


def _qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    original_shape = list(v.shape)
    q = q.contiguous().view(-1, 4)
    v = v.contiguous().view(-1, 3)
    qvec = q[:, 1:]
    uv = torch.cross(qvec, v, dim=1)
    uuv = torch.cross(qvec, uv, dim=1)
    return (v + 2 * (q[:, :1] * uv + uuv)).view(original_shape)


def _qbetween(v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    v = torch.cross(v0, v1, dim=-1)
    w = torch.sqrt((v0**2).sum(dim=-1, keepdim=True) * (v1**2).sum(dim=-1, keepdim=True)) + (v0 * v1).sum(
        dim=-1, keepdim=True
    )
    return _qnormalize(torch.cat([w, v], dim=-1))


def _quaternion_to_cont6d(quaternions: torch.Tensor) -> torch.Tensor:
    r, i, j, k = torch.unbind(quaternions, -1)
    two_s = 2.0 / (quaternions * quaternions).sum(-1)
    o = torch.stack(
        (
            1 - two_s * (j * j + k * k), two_s * (i * j - k * r), two_s * (i * k + j * r),
            two_s * (i * j + k * r), 1 - two_s * (i * i + k * k), two_s * (j * k - i * r),
            two_s * (i * k - j * r), two_s * (j * k + i * r), 1 - two_s * (i * i + j * j),
        ),
        -1,
    )
    m = o.reshape(quaternions.shape[:-1] + (3, 3))
    return torch.cat([m[..., 0], m[..., 1]], dim=-1)


def qinv_np(q: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    return _qinv(torch.from_numpy(q).to(dtype)).numpy()


def qmul_np(q: np.ndarray, r: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    return _qmul(torch.from_numpy(q).contiguous().to(dtype), torch.from_numpy(r).contiguous().to(dtype)).numpy()


def qrot_np(q: np.ndarray, v: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    return _qrot(torch.from_numpy(q).contiguous().to(dtype), torch.from_numpy(v).contiguous().to(dtype)).numpy()


def qbetween_np(v0: np.ndarray, v1: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    return _qbetween(torch.from_numpy(v0).to(dtype), torch.from_numpy(v1).to(dtype)).numpy()


def quaternion_to_cont6d_np(q: np.ndarray, dtype: torch.dtype = torch.float32) -> np.ndarray:
    return _quaternion_to_cont6d(torch.from_numpy(q).contiguous().to(dtype)).numpy()


# ----------------------------------------------------------------------------- common/skeleton.py


class Skeleton:
    """HumanML3D's ``Skeleton`` (the parts ``process_file`` uses); ``dtype`` of its torch arithmetic."""

    def __init__(self, offset: torch.Tensor, kinematic_tree, device: str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.device = device
        self.dtype = dtype
        self._raw_offset_np = offset.numpy()
        self._raw_offset = offset.clone().detach().to(device).to(dtype)
        self._kinematic_tree = kinematic_tree
        self._offset = None
        self._parents = [0] * len(self._raw_offset)
        self._parents[0] = -1
        for chain in self._kinematic_tree:
            for j in range(1, len(chain)):
                self._parents[chain[j]] = chain[j - 1]

    def set_offset(self, offsets: torch.Tensor) -> None:
        self._offset = offsets.clone().detach().to(self.device).to(self.dtype)

    def get_offsets_joints(self, joints: torch.Tensor) -> torch.Tensor:
        _offsets = self._raw_offset.clone()
        for i in range(1, self._raw_offset.shape[0]):
            _offsets[i] = torch.norm(joints[i] - joints[self._parents[i]], p=2, dim=0) * _offsets[i]
        self._offset = _offsets.detach()
        return _offsets

    def inverse_kinematics_np(self, joints: np.ndarray, face_joint_idx, smooth_forward: bool = False) -> np.ndarray:
        l_hip, r_hip, sdr_r, sdr_l = face_joint_idx
        across1 = joints[:, r_hip] - joints[:, l_hip]
        across2 = joints[:, sdr_r] - joints[:, sdr_l]
        across = across1 + across2
        across = across / np.sqrt((across**2).sum(axis=-1))[:, np.newaxis]
        forward = np.cross(np.array([[0, 1, 0]]), across, axis=-1)
        if smooth_forward:
            forward = gaussian_filter1d(forward, 20, axis=0, mode="nearest")
        forward = forward / np.sqrt((forward**2).sum(axis=-1))[..., np.newaxis]
        target = np.array([[0, 0, 1]]).repeat(len(forward), axis=0)
        root_quat = qbetween_np(forward, target, self.dtype)
        quat_params = np.zeros(joints.shape[:-1] + (4,))
        root_quat[0] = np.array([[1.0, 0.0, 0.0, 0.0]])
        quat_params[:, 0] = root_quat
        for chain in self._kinematic_tree:
            R = root_quat
            for j in range(len(chain) - 1):
                u = self._raw_offset_np[chain[j + 1]][np.newaxis, ...].repeat(len(joints), axis=0)
                v = joints[:, chain[j + 1]] - joints[:, chain[j]]
                v = v / np.sqrt((v**2).sum(axis=-1))[:, np.newaxis]
                rot_u_v = qbetween_np(u, v, self.dtype)
                R_loc = qmul_np(qinv_np(R, self.dtype), rot_u_v, self.dtype)
                quat_params[:, chain[j + 1], :] = R_loc
                R = qmul_np(R, R_loc, self.dtype)
        return quat_params

    def forward_kinematics_np(self, quat_params: np.ndarray, root_pos: np.ndarray) -> np.ndarray:
        offsets = self._offset.expand(quat_params.shape[0], -1, -1).numpy()
        joints = np.zeros(quat_params.shape[:-1] + (3,))
        joints[:, 0] = root_pos
        for chain in self._kinematic_tree:
            R = quat_params[:, 0]
            for i in range(1, len(chain)):
                R = qmul_np(R, quat_params[:, chain[i]], self.dtype)
                offset_vec = offsets[:, chain[i]]
                joints[:, chain[i]] = qrot_np(R, offset_vec, self.dtype) + joints[:, chain[i - 1]]
        return joints


_N_RAW_OFFSETS = torch.from_numpy(RAW_OFFSETS)
_CHAINS = [list(c) for c in KINEMATIC_CHAINS]
_TGT_OFFSETS = torch.from_numpy(np.asarray(TARGET_OFFSETS))


# ----------------------------------------------------------------------------- motion_representation.ipynb


def uniform_skeleton(positions: np.ndarray, target_offset: torch.Tensor,
                     dtype: torch.dtype = torch.float32) -> np.ndarray:
    src_skel = Skeleton(_N_RAW_OFFSETS, _CHAINS, "cpu", dtype)
    first = torch.from_numpy(positions[0])  # the published code measures in the input's own dtype
    src_offset = src_skel.get_offsets_joints(first if dtype == torch.float32 else first.to(dtype)).numpy()
    tgt_offset = target_offset.numpy()
    src_leg_len = np.abs(src_offset[_L_IDX1]).max() + np.abs(src_offset[_L_IDX2]).max()
    tgt_leg_len = np.abs(tgt_offset[_L_IDX1]).max() + np.abs(tgt_offset[_L_IDX2]).max()
    scale_rt = tgt_leg_len / src_leg_len
    tgt_root_pos = positions[:, 0] * scale_rt
    quat_params = src_skel.inverse_kinematics_np(positions, FACE_JOINTS)
    src_skel.set_offset(target_offset)
    return src_skel.forward_kinematics_np(quat_params, tgt_root_pos)


def _foot_detect(positions: np.ndarray, thres: float) -> tuple[np.ndarray, np.ndarray]:
    velfactor = np.array([thres, thres])
    feet_l_x = (positions[1:, _FID_L, 0] - positions[:-1, _FID_L, 0]) ** 2
    feet_l_y = (positions[1:, _FID_L, 1] - positions[:-1, _FID_L, 1]) ** 2
    feet_l_z = (positions[1:, _FID_L, 2] - positions[:-1, _FID_L, 2]) ** 2
    feet_l = ((feet_l_x + feet_l_y + feet_l_z) < velfactor).astype(float)
    feet_r_x = (positions[1:, _FID_R, 0] - positions[:-1, _FID_R, 0]) ** 2
    feet_r_y = (positions[1:, _FID_R, 1] - positions[:-1, _FID_R, 1]) ** 2
    feet_r_z = (positions[1:, _FID_R, 2] - positions[:-1, _FID_R, 2]) ** 2
    feet_r = ((feet_r_x + feet_r_y + feet_r_z) < velfactor).astype(float)
    return feet_l, feet_r


def process_file(positions: np.ndarray, feet_thre: float = FEET_THRESHOLD,
                 dtype: torch.dtype = torch.float32) -> np.ndarray:
    """The published ``process_file``: joints (T, 22, 3) -> features (T-1, 263) (its ``data``).

    ``dtype`` float32 is the published arithmetic; float64 runs the same code in double precision."""
    positions = uniform_skeleton(positions, _TGT_OFFSETS, dtype)
    floor_height = positions.min(axis=0).min(axis=0)[1]
    positions[:, :, 1] -= floor_height
    root_pos_init = positions[0]
    root_pose_init_xz = root_pos_init[0] * np.array([1, 0, 1])
    positions = positions - root_pose_init_xz
    r_hip, l_hip, sdr_r, sdr_l = FACE_JOINTS
    across1 = root_pos_init[r_hip] - root_pos_init[l_hip]
    across2 = root_pos_init[sdr_r] - root_pos_init[sdr_l]
    across = across1 + across2
    across = across / np.sqrt((across**2).sum(axis=-1))[..., np.newaxis]
    forward_init = np.cross(np.array([[0, 1, 0]]), across, axis=-1)
    forward_init = forward_init / np.sqrt((forward_init**2).sum(axis=-1))[..., np.newaxis]
    target = np.array([[0, 0, 1]])
    root_quat_init = qbetween_np(forward_init, target, dtype)
    root_quat_init = np.ones(positions.shape[:-1] + (4,)) * root_quat_init
    positions = qrot_np(root_quat_init, positions, dtype)
    global_positions = positions.copy()
    feet_l, feet_r = _foot_detect(positions, feet_thre)

    skel = Skeleton(_N_RAW_OFFSETS, _CHAINS, "cpu", dtype)
    quat_params = skel.inverse_kinematics_np(positions, FACE_JOINTS, smooth_forward=True)
    cont_6d_params = quaternion_to_cont6d_np(quat_params, dtype)
    r_rot = quat_params[:, 0].copy()
    velocity = (positions[1:, 0] - positions[:-1, 0]).copy()
    velocity = qrot_np(r_rot[1:], velocity, dtype)
    r_velocity = qmul_np(r_rot[1:], qinv_np(r_rot[:-1], dtype), dtype)

    positions[..., 0] -= positions[:, 0:1, 0]  # get_rifke
    positions[..., 2] -= positions[:, 0:1, 2]
    positions = qrot_np(np.repeat(r_rot[:, None], positions.shape[1], axis=1), positions, dtype)

    root_y = positions[:, 0, 1:2]
    r_velocity = np.arcsin(r_velocity[:, 2:3])
    l_velocity = velocity[:, [0, 2]]
    root_data = np.concatenate([r_velocity, l_velocity, root_y[:-1]], axis=-1)
    rot_data = cont_6d_params[:, 1:].reshape(len(cont_6d_params), -1)
    ric_data = positions[:, 1:].reshape(len(positions), -1)
    local_vel = qrot_np(np.repeat(r_rot[:-1, None], global_positions.shape[1], axis=1),
                        global_positions[1:] - global_positions[:-1], dtype)
    local_vel = local_vel.reshape(len(local_vel), -1)
    data = root_data
    data = np.concatenate([data, ric_data[:-1]], axis=-1)
    data = np.concatenate([data, rot_data[:-1]], axis=-1)
    data = np.concatenate([data, local_vel], axis=-1)
    data = np.concatenate([data, feet_l, feet_r], axis=-1)
    return data
