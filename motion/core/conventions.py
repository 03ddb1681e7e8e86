"""HumanML3D's conventions for turning AMASS sequences into 20 fps, y-up joint clips.

AMASS is z-up; HumanML3D multiplies joints on the right by a y/z swap (``pose_data``), then
cuts clips by ``index.csv`` (frames at 20 fps), trims a leading segment for a few datasets and
negates x (except for HumanAct12). The two reflections make a proper rotation: the result is
y-up with the body's left at +x when it faces +z.
"""
from __future__ import annotations

import numpy as np

from motion.core.errors import DataError

TARGET_FPS = 20
SPLITS = ("train", "val", "test")  # HumanML3D's data splits (splits/<name>.txt)

# Right-multiply z-up AMASS joints by this to get HumanML3D's y-up pose_data.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])

# Leading frames (at 20 fps) HumanML3D drops before cutting clips, by dataset folder name.
TRIM_FRAMES: dict[str, int] = {
    "Eyes_Japan_Dataset": 60,
    "MPI_HDM05": 60,
    "TotalCapture": 20,
    "MPI_Limits": 20,
    "Transitions_mocap": 10,
}


def downsample_step(fps: float, path: str = "<motion>", target_fps: int = TARGET_FPS) -> int:
    """Frame step HumanML3D uses to reach ``target_fps``: every ``int(fps / target_fps)``-th frame."""
    if not np.isfinite(fps) or fps < target_fps:
        raise DataError(path, f"mocap frame rate {fps!r} is unknown or below {target_fps} fps",
                        "use AMASS 'SMPL+H G' files, which store mocap_framerate")
    return int(fps / target_fps)


def amass_to_pose_data(joints: np.ndarray) -> np.ndarray:
    """AMASS z-up joints (..., 3) to HumanML3D's y-up ``pose_data`` (y and z swapped)."""
    return joints @ Z_UP_TO_Y_UP


def cut_clip(pose_data: np.ndarray, start: int, end: int, source_path: str) -> np.ndarray:
    """One HumanML3D clip from 20 fps ``pose_data`` (T, J, 3): trim, slice, negate x.

    ``end`` may be -1 (HumanML3D's "to the end"). HumanAct12 sequences are used whole and not negated.
    """
    if "humanact12" in source_path:
        return pose_data.copy()
    for dataset, frames in TRIM_FRAMES.items():
        if dataset in source_path:
            pose_data = pose_data[frames:]
            break
    clip = pose_data[start:end].copy() if end != -1 else pose_data[start:].copy()
    clip[..., 0] *= -1
    return clip
