"""Stage features: 20 fps joint clips -> HumanML3D 263-d features, recovered joints, stats, splits.

Reads ``paths`` and ``features`` from params.yaml; inputs ${paths.poses}/joints/*.npy,
${paths.poses}/clips.parquet and ${paths.annotations}/splits/*.txt; writes ${paths.features}
whole or not at all: new_joint_vecs/, new_joints/, Mean.npy, Std.npy, part_stats.npz,
splits/{train,val,test,all}.txt (with mirrored M ids), manifest.parquet, report.json.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from motion.core.config import load_params
from motion.core.errors import DataError
from motion.data.features import extract_features_packed, pack, recover_from_ric, unpack
from motion.core.io import atomic_dir, write_json, write_parquet, write_text
from motion.core.skeleton import NUM_JOINTS
from motion.data.stats import Moments, humanml3d_mean_std, part_stats

SPLITS = ("train", "val", "test")
CLIP_COLUMNS = ("id", "source_path", "frames", "mirrored", "num_captions")


def id_order(clip_id: str) -> tuple[bool, str]:
    """HumanML3D's list order: original ids sorted, then the mirrored M ids sorted."""
    return clip_id.startswith("M"), clip_id


def read_clips(path: Path) -> pd.DataFrame:
    """The poses stage's clip table, sorted in HumanML3D order."""
    if not path.is_file():
        raise DataError(path, "clip table is missing", "run the poses stage first (dvc repro poses)")
    clips = pd.read_parquet(path)
    missing = [c for c in CLIP_COLUMNS if c not in clips.columns]
    if missing:
        raise DataError(path, f"columns {missing} are missing", "rerun the poses stage")
    if clips["id"].duplicated().any():
        duplicates = sorted(clips.loc[clips["id"].duplicated(), "id"])[:5]
        raise DataError(path, f"duplicate ids {duplicates}", "rerun the poses stage")
    clips["id"] = clips["id"].astype(str)
    return clips.sort_values("id", key=lambda ids: ids.map(id_order)).reset_index(drop=True)


def read_splits(folder: Path) -> dict[str, str]:
    """Split of every listed id; an original id also claims its mirrored M copy."""
    split_of: dict[str, str] = {}
    for name in SPLITS:
        path = folder / f"{name}.txt"
        if not path.is_file():
            raise DataError(path, "split file is missing", "run the download stage first (dvc repro download)")
        for line in path.read_text(encoding="utf-8").split():
            for clip_id in (line,) if line.startswith("M") else (line, "M" + line):
                previous = split_of.setdefault(clip_id, name)
                if previous != name:
                    raise DataError(path, f"id {clip_id} is in both {previous} and {name}", "fix the split files")
    return split_of


def load_joints(path: Path) -> np.ndarray:
    """One clip's joints (T, 22, 3) float64, checked."""
    if not path.is_file():
        raise DataError(path, "joint file listed in clips.parquet is missing", "rerun the poses stage")
    joints = np.load(path)
    if joints.ndim != 3 or joints.shape[1] < NUM_JOINTS or joints.shape[2] != 3:
        raise DataError(path, f"joints have shape {joints.shape}, expected (T, 22, 3)", "rerun the poses stage")
    return joints[:, :NUM_JOINTS].astype(np.float64)


def batches(frames: list[int], batch_frames: int) -> list[list[int]]:
    """Consecutive index groups of about ``batch_frames`` frames each."""
    groups, group, total = [], [], 0
    for i, n in enumerate(frames):
        group.append(i)
        total += n
        if total >= batch_frames:
            groups.append(group)
            group, total = [], 0
    return groups + ([group] if group else [])


def build_features(poses: Path, splits_dir: Path, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Run the whole stage into ``out`` (a fresh temporary folder); returns the report."""
    clips = read_clips(poses / "clips.parquet")
    split_of = read_splits(splits_dir)
    threshold = float(settings.get("feet_threshold", 0.002))
    min_frames = max(2, int(settings.get("min_frames", 2)))
    fix_wrap = bool(settings.get("fix_root_wrap", False))
    (out / "new_joint_vecs").mkdir(parents=True)
    (out / "new_joints").mkdir(parents=True)

    skipped: Counter[str] = Counter()
    written: dict[str, int] = {}
    moments = Moments()
    ids = list(clips["id"])
    groups = batches(list(clips["frames"]), int(settings.get("batch_frames", 50_000)))
    with tqdm(total=len(ids), desc="features", unit="clip") as progress:
        for group in groups:
            batch_ids, batch_joints = [], []
            for i in group:
                joints = load_joints(poses / "joints" / f"{ids[i]}.npy")
                if len(joints) < min_frames:
                    skipped["too_short"] += 1
                elif not np.isfinite(joints).all():
                    skipped["nan_joints"] += 1
                else:
                    batch_ids.append(ids[i])
                    batch_joints.append(joints)
            if batch_ids:
                joints, lengths = pack(batch_joints)
                packed = extract_features_packed(joints, lengths, threshold, fix_wrap=fix_wrap)
                for clip_id, vecs in zip(batch_ids, unpack(packed, lengths - 1)):
                    if not np.isfinite(vecs).all():  # e.g. a degenerate (zero-length) bone
                        skipped["nan_features"] += 1
                        continue
                    np.save(out / "new_joint_vecs" / f"{clip_id}.npy", vecs)
                    np.save(out / "new_joints" / f"{clip_id}.npy", recover_from_ric(vecs).astype(np.float32))
                    written[clip_id] = len(vecs)
                    if split_of.get(clip_id) == "train":
                        moments.update(vecs)
            progress.update(len(group))

    if moments.count < 2:
        raise DataError(splits_dir / "train.txt", "no usable train clip to compute Mean/Std from",
                        "check the split files against the clips of the poses stage")
    mean, std = humanml3d_mean_std(moments)
    np.save(out / "Mean.npy", mean)
    np.save(out / "Std.npy", std)
    np.savez(out / "part_stats.npz", **part_stats(moments))

    kept = clips[clips["id"].isin(written)].copy()
    kept["frames"] = kept["id"].map(written).astype("int64")  # feature frames (T - 1)
    kept["split"] = kept["id"].map(lambda i: split_of.get(i, "none"))
    write_parquet(out / "manifest.parquet", kept[["id", "source_path", "frames", "split", "num_captions", "mirrored"]])
    for name in SPLITS:
        write_text(out / "splits" / f"{name}.txt", "".join(f"{i}\n" for i in kept.loc[kept["split"] == name, "id"]))
    write_text(out / "splits" / "all.txt", "".join(f"{i}\n" for i in kept["id"]))

    report = {
        "clips_in": len(ids),
        "clips_written": len(written),
        "frames_written": int(sum(written.values())),
        "skipped": {reason: skipped[reason] for reason in ("too_short", "nan_joints", "nan_features")},
        "clips_per_split": {name: int((kept["split"] == name).sum()) for name in (*SPLITS, "none")},
        "stats_frames": moments.count,
        "feet_threshold": threshold,
        "fix_root_wrap": fix_wrap,
    }
    write_json(out / "report.json", report)
    return report


def main() -> None:
    """Compute the features of every clip of ${paths.poses} into ${paths.features}."""
    params = load_params()
    paths, settings = params["paths"], params.get("features") or {}
    try:
        with atomic_dir(paths["features"]) as tmp:
            report = build_features(Path(paths["poses"]), Path(paths["annotations"]) / "splits", tmp, settings)
    except DataError as e:
        sys.exit(f"features: {e}")
    write_json(Path(paths["metrics"]) / "data.json", {
        "clips": report["clips_written"],
        "frames": report["frames_written"],
        **{f"clips_{name}": n for name, n in report["clips_per_split"].items() if name != "none"},
    })
    skipped = ", ".join(f"{k} {v}" for k, v in report["skipped"].items() if v) or "none"
    print(f"features: wrote {report['clips_written']} clips ({report['frames_written']} frames) to "
          f"{paths['features']}; skipped: {skipped}; splits: {report['clips_per_split']}")


if __name__ == "__main__":
    main()
