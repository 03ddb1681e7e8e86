"""A random but well-formed SMPL+H model file (the layout of AMASS's extended SMPL+H ``model.npz``).

The real model files are licence-gated, so the body-model and poses tests write this one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from motion.core.skeleton import PARENTS, TARGET_OFFSETS

NUM_VERTICES = 6890  # smplx picks extra joints at fixed SMPL-H vertex ids, so the mesh needs this size
NUM_SMPLH_JOINTS = 52


def smplh_parents() -> np.ndarray:
    """Parents of SMPL+H's 52 joints: the 22 body joints, then 15 per hand (5 fingers x 3)."""
    parents = list(PARENTS)
    for wrist in (20, 21):
        for _ in range(5):
            parents += [wrist, len(parents), len(parents) + 1]
    return np.array(parents)


def write_smplh_model(path: Path, seed: int = 0, with_hands: bool = False) -> Path:
    """Write a random, valid SMPL+H model .npz (rest joints on the built-in skeleton, y-up)."""
    rng = np.random.default_rng(seed)
    parents = smplh_parents()
    offsets = np.concatenate([TARGET_OFFSETS, np.tile([[0.03, 0.0, 0.0]], (30, 1))]).astype(np.float64)
    offsets[37:] *= -1  # right-hand fingers point to -x
    rest = np.zeros((NUM_SMPLH_JOINTS, 3))
    for j in range(1, NUM_SMPLH_JOINTS):
        rest[j] = rest[parents[j]] + offsets[j]
    owner = np.minimum(np.arange(NUM_VERTICES) // (NUM_VERTICES // NUM_SMPLH_JOINTS), NUM_SMPLH_JOINTS - 1)
    v_template = rest[owner] + rng.normal(scale=0.03, size=(NUM_VERTICES, 3))
    one_hot = np.eye(NUM_SMPLH_JOINTS)[owner]  # (V, 52)
    data = {
        "v_template": v_template,
        "f": rng.integers(0, NUM_VERTICES, size=(13776, 3)).astype(np.uint32),
        "J_regressor": (one_hot / one_hot.sum(0)).T,  # each joint = mean of its vertices
        "weights": one_hot,
        "kintree_table": np.stack([np.where(parents < 0, 2**32 - 1, parents),
                                   np.arange(NUM_SMPLH_JOINTS)]).astype(np.int64),
        "shapedirs": rng.normal(scale=0.01, size=(NUM_VERTICES, 3, 16)),
        "posedirs": rng.normal(scale=1e-3, size=(NUM_VERTICES, 3, (NUM_SMPLH_JOINTS - 1) * 9)).astype(np.float32),
    }
    if with_hands:
        for side in ("l", "r"):
            data[f"hands_components{side}"] = np.linalg.qr(rng.normal(size=(45, 45)))[0]
            data[f"hands_mean{side}"] = rng.normal(scale=0.1, size=45)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return path
