"""Small feature and caption stores for tests, in the layout the features and poses stages write."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from motion.core.parts import FEATURE_DIM
from motion.core.skeleton import NUM_JOINTS
from motion.data.captions import format_captions, parse_caption_line, read_caption_table, write_caption_table
from motion.data.clipstore import CAPTION_TABLE, FEATURE_VECS, POSE_JOINTS, ClipWriter, open_features, open_poses


def write_feature_store(features_dir: Path, clips: dict[str, np.ndarray]) -> None:
    """``new_joint_vecs.npy`` + ``index.parquet`` of ``{id: (T, 263) features}`` in ``features_dir``."""
    with ClipWriter(features_dir, {FEATURE_VECS: ((FEATURE_DIM,), np.float32)}) as store:
        for clip_id, vecs in clips.items():
            store.add(clip_id, **{FEATURE_VECS: vecs})


def write_joint_store(poses_dir: Path, clips: dict[str, np.ndarray]) -> None:
    """``joints.npy`` + ``index.parquet`` of ``{id: (T, 22, 3) joints}`` in ``poses_dir`` (as the poses stage)."""
    with ClipWriter(poses_dir, {POSE_JOINTS: ((NUM_JOINTS, 3), np.float32)}) as store:
        for clip_id, joints in clips.items():
            store.add(clip_id, **{POSE_JOINTS: joints})


def write_caption_files(poses_dir: Path, files: dict[str, str]) -> None:
    """``texts.parquet`` in ``poses_dir`` from ``{id: contents of a HumanML3D texts/<id>.txt}``."""
    write_caption_table(Path(poses_dir) / CAPTION_TABLE,
                        {i: [parse_caption_line(ln) for ln in text.splitlines() if ln.strip()]
                         for i, text in files.items()})


def pose_clip(poses_dir: Path, clip_id: str) -> np.ndarray:
    """One joint clip (T, 22, 3) of a poses stage's output."""
    return np.asarray(open_poses(poses_dir).load(clip_id, POSE_JOINTS))


def feature_clip(features_dir: Path, clip_id: str) -> np.ndarray:
    """One clip's features (T, 263) of a features stage's output."""
    return np.asarray(open_features(features_dir).load(clip_id, FEATURE_VECS))


def caption_file(poses_dir: Path, clip_id: str) -> str | None:
    """What HumanML3D's ``texts/<clip_id>.txt`` would hold for a poses stage's output (None: no such clip)."""
    captions = read_caption_table(Path(poses_dir) / CAPTION_TABLE).get(clip_id)
    return None if captions is None else format_captions(captions)
