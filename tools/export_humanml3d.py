"""Write the pipeline's data in HumanML3D's own folder layout, for code that reads HumanML3D directly.

    python -m tools.export_humanml3d OUT [--features data/features] [--poses data/poses] [--no-joints]

The pipeline keeps its clips packed (``motion.data.clipstore``: one ``.npy`` per array and an index),
because DVC checks a few large files in a fraction of the time it takes for tens of thousands of small
ones. This tool unpacks them into what HumanML3D's notebooks produce and what T2M, MDM, TMR and LGTM
read: ``new_joint_vecs/<id>.npy``, ``new_joints/<id>.npy``, ``texts/<id>.txt``, ``Mean.npy``,
``Std.npy`` and ``train/val/test/all.txt`` (mirrored ``M`` ids included), plus ``joints/<id>.npy``
(HumanML3D's ``pose_data`` clips, 20 fps) unless ``--no-joints``. The same bytes per clip as the
stores hold. OUT is written whole or not at all; an existing OUT is an error (nothing is overwritten).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from motion.core.conventions import SPLITS
from motion.core.errors import DataError
from motion.core.io import atomic_dir
from motion.data.captions import format_captions, read_caption_table
from motion.data.clipstore import (
    CAPTION_TABLE,
    FEATURE_JOINTS,
    FEATURE_VECS,
    POSE_JOINTS,
    ClipStore,
    open_features,
    open_poses,
)


def _unpack(store: ClipStore, array: str, ids: list[str], folder: Path) -> None:
    folder.mkdir()
    for clip_id in tqdm(ids, desc=array, unit="clip"):
        np.save(folder / f"{clip_id}.npy", np.asarray(store.load(clip_id, array)))


def export_humanml3d(features_dir: Path, poses_dir: Path, out: Path, joints: bool = True) -> dict[str, int]:
    """Write the HumanML3D layout of the features (and pose joints) into the new folder ``out``; returns
    the number of files per folder."""
    if out.exists():
        raise DataError(out, "already exists", "name a new folder (nothing is overwritten)")
    features = open_features(features_dir)
    captions = read_caption_table(poses_dir / CAPTION_TABLE)
    ids = features.ids
    counts: dict[str, int] = {}
    with atomic_dir(out) as tmp:
        for array in (FEATURE_VECS, FEATURE_JOINTS):
            _unpack(features, array, ids, tmp / array)
            counts[array] = len(ids)
        (tmp / "texts").mkdir()
        for clip_id in ids:
            if clip_id not in captions:
                raise DataError(poses_dir / CAPTION_TABLE, f"clip {clip_id} has no captions",
                                "rerun `dvc repro poses features` (the two folders are from different runs)")
            (tmp / "texts" / f"{clip_id}.txt").write_text(format_captions(captions[clip_id]), encoding="utf-8")
        counts["texts"] = len(ids)
        if joints:
            poses = open_poses(poses_dir)
            _unpack(poses, POSE_JOINTS, poses.ids, tmp / "joints")
            counts["joints"] = len(poses)
        for name in ("Mean.npy", "Std.npy"):
            source = features_dir / name
            if not source.is_file():
                raise DataError(source, "is missing", "run `dvc repro features`")
            shutil.copyfile(source, tmp / name)
        for name in (*SPLITS, "all"):
            source = features_dir / "splits" / f"{name}.txt"
            if not source.is_file():
                raise DataError(source, "is missing", "run `dvc repro features`")
            shutil.copyfile(source, tmp / f"{name}.txt")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="new folder to write the HumanML3D layout into")
    parser.add_argument("--features", type=Path, default=Path("data/features"), help="the features stage's folder")
    parser.add_argument("--poses", type=Path, default=Path("data/poses"), help="the poses stage's folder")
    parser.add_argument("--no-joints", action="store_true", help="skip joints/ (the 20 fps pose_data clips)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Export, then print what was written."""
    args = build_parser().parse_args(argv)
    try:
        counts = export_humanml3d(args.features, args.poses, args.out, joints=not args.no_joints)
    except DataError as error:
        print(f"export_humanml3d: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{args.out}: " + ", ".join(f"{name}/ {n} files" for name, n in counts.items()))


if __name__ == "__main__":
    main()
