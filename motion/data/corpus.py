"""The features corpus: every joint clip of the poses stage as HumanML3D features, with statistics and splits.

In HumanML3D's list order (original ids sorted, then the mirrored ``M`` ids), each clip's joints
become 263-d features (``new_joint_vecs``) and the joints recovered from them (``new_joints``);
clips that are too short or hold NaN are skipped and counted. Mean/Std and the per-part
statistics come from the train split; the split files list the written ids (mirrors follow their
original's split); ``manifest.parquet`` and ``report.json`` describe the result.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from motion.core.conventions import SPLITS
from motion.core.errors import DataError
from motion.core.io import read_table, save_npy, write_json, write_parquet, write_text
from motion.core.parts import FEATURE_DIM
from motion.core.skeleton import NUM_JOINTS
from motion.data.clipstore import FEATURE_JOINTS, FEATURE_VECS, POSE_JOINTS, ClipStore, ClipWriter, open_poses
from motion.data.features import extract_features_packed, pack, recover_from_ric, unpack
from motion.data.stats import Moments, humanml3d_mean_std, part_stats

CLIP_COLUMNS = ("id", "source_path", "frames", "mirrored", "num_captions")
SKIP_REASONS = ("too_short", "nan_joints", "nan_features")


@dataclass(frozen=True)
class FeatureSettings:
    """The ``features:`` section of params.yaml."""

    feet_threshold: float  # squared metres per frame below which a foot joint is in contact
    min_frames: int        # clips with fewer joint frames are skipped (at least 2: features are differences)
    fix_root_wrap: bool    # fix HumanML3D's sign flip of the root rotation velocity at +-180 deg
    batch_frames: int      # joint frames per vectorised extraction batch


@dataclass
class Extraction:
    """What the extraction wrote: feature frames per clip id, skip counts and the train-split moments."""

    written: dict[str, int]
    skipped: Counter[str]
    moments: Moments
    cache_hits: int = 0
    cache_misses: int = 0


def id_order(clip_id: str) -> tuple[bool, str]:
    """HumanML3D's list order: original ids sorted, then the mirrored M ids sorted."""
    return clip_id.startswith("M"), clip_id


def read_clips(path: Path) -> pd.DataFrame:
    """The poses stage's clip table, sorted in HumanML3D order."""
    clips = read_table(path, "clip table", CLIP_COLUMNS, "run the poses stage first (dvc repro poses)")
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


def load_joints(store: ClipStore, clip_id: str) -> np.ndarray:
    """One clip's joints (T, 22, 3) float64 from the poses store, checked."""
    joints = store.read(clip_id, POSE_JOINTS)  # a copy, not a mapped view: the pass over all clips stays small
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise DataError(store.folder / f"{POSE_JOINTS}.npy", f"joints have frames of shape {joints.shape[1:]}, "
                        f"expected (22, 3)", "rerun the poses stage")
    return np.asarray(joints, dtype=np.float64)


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


FEATURE_CACHE_VERSION = 1  # bump when extract_features_packed's numbers change


class FeatureCache:
    """Each clip's features (T - 1, 263) float32 by content key, outside the stage's outputs: a rerun after
    clips were added computes only the new ones. The key is the clip's joints and the feature settings, so
    a changed clip, threshold or root-wrap fix misses; the clips' features are the same bytes either way
    (each clip's features depend on its own frames only, whatever batch it is extracted in)."""

    def __init__(self, folder: str | Path, settings: FeatureSettings) -> None:
        self.folder = Path(folder)
        self.salt = f"{FEATURE_CACHE_VERSION}|{settings.feet_threshold!r}|{settings.fix_root_wrap}|".encode()

    def key(self, joints: np.ndarray) -> str:
        """The content key of one clip's joints (T, 22, 3)."""
        digest = hashlib.blake2b(self.salt, digest_size=16)
        digest.update(repr(joints.shape).encode() + joints.dtype.str.encode())
        digest.update(np.ascontiguousarray(joints).tobytes())
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        """The cached features of ``key``, or None."""
        path = self._path(key)
        return np.load(path) if path.is_file() else None

    def save(self, key: str, vecs: np.ndarray) -> None:
        """Store one clip's features (atomically: an interrupted write leaves no entry)."""
        save_npy(self._path(key), vecs)


def extract_clips(poses: ClipStore, clips: pd.DataFrame, split_of: dict[str, str], out: Path,
                  settings: FeatureSettings, cache: FeatureCache | None = None) -> Extraction:
    """Write ``new_joint_vecs`` and ``new_joints`` of every usable clip, batch by batch, into the store ``out``
    (features taken from ``cache`` where it holds them, and added to it where not)."""
    min_frames = max(2, settings.min_frames)
    result = Extraction({}, Counter(), Moments())
    ids = list(clips["id"])
    layout = {FEATURE_VECS: ((FEATURE_DIM,), np.float32), FEATURE_JOINTS: ((NUM_JOINTS, 3), np.float32)}
    with ClipWriter(out, layout) as store, tqdm(total=len(ids), desc="features", unit="clip") as progress:
        for group in batches(list(clips["frames"]), settings.batch_frames):
            batch_ids, batch_joints = [], []
            for i in group:
                joints = load_joints(poses, ids[i])
                if len(joints) < min_frames:
                    result.skipped["too_short"] += 1
                elif not np.isfinite(joints).all():
                    result.skipped["nan_joints"] += 1
                else:
                    batch_ids.append(ids[i])
                    batch_joints.append(joints)
            if batch_ids:
                vecs = _batch_features(batch_joints, settings, cache, result)
                _write_batch(batch_ids, vecs, split_of, store, result)
            progress.update(len(group))
    return result


def _batch_features(batch_joints: list[np.ndarray], settings: FeatureSettings, cache: FeatureCache | None,
                    result: Extraction) -> list[np.ndarray]:
    """Features of one batch of clips: the cached ones loaded, the others extracted together (and cached)."""
    keys = [cache.key(j) for j in batch_joints] if cache else []
    found = [cache.load(k) for k in keys] if cache else [None] * len(batch_joints)
    todo = [i for i, v in enumerate(found) if v is None]
    result.cache_hits += len(found) - len(todo)
    result.cache_misses += len(todo) if cache else 0
    if todo:
        joints, lengths = pack([batch_joints[i] for i in todo])
        packed = extract_features_packed(joints, lengths, settings.feet_threshold, fix_wrap=settings.fix_root_wrap)
        for i, vecs in zip(todo, unpack(packed, lengths - 1)):
            found[i] = vecs
            if cache:
                cache.save(keys[i], vecs)
    return found


def _write_batch(batch_ids: list[str], batch_vecs: list[np.ndarray], split_of: dict[str, str], store: ClipWriter,
                 result: Extraction) -> None:
    """One batch of clips' features added to the store clip by clip, train clips added to the moments."""
    for clip_id, vecs in zip(batch_ids, batch_vecs):
        if not np.isfinite(vecs).all():  # e.g. a degenerate (zero-length) bone
            result.skipped["nan_features"] += 1
            continue
        store.add(clip_id, **{FEATURE_VECS: vecs, FEATURE_JOINTS: recover_from_ric(vecs)})
        result.written[clip_id] = len(vecs)
        if split_of.get(clip_id) == "train":
            result.moments.update(vecs)


def write_statistics(moments: Moments, out: Path, train_file: Path) -> None:
    """HumanML3D's Mean.npy / Std.npy and the per-part ``part_stats.npz`` of the train clips."""
    if moments.count < 2:
        raise DataError(train_file, "no usable train clip to compute Mean/Std from",
                        "check the split files against the clips of the poses stage")
    mean, std = humanml3d_mean_std(moments)
    np.save(out / "Mean.npy", mean)
    np.save(out / "Std.npy", std)
    np.savez(out / "part_stats.npz", **part_stats(moments))


def write_manifest(clips: pd.DataFrame, written: dict[str, int], split_of: dict[str, str], out: Path) -> pd.DataFrame:
    """``manifest.parquet`` and ``splits/{train,val,test,all}.txt`` of the written clips; returns the manifest."""
    kept = clips[clips["id"].isin(written)].copy()
    kept["frames"] = kept["id"].map(written).astype("int64")  # feature frames (T - 1)
    kept["split"] = kept["id"].map(lambda i: split_of.get(i, "none"))
    write_parquet(out / "manifest.parquet", kept[["id", "source_path", "frames", "split", "num_captions", "mirrored"]])
    for name in SPLITS:
        write_text(out / "splits" / f"{name}.txt", "".join(f"{i}\n" for i in kept.loc[kept["split"] == name, "id"]))
    write_text(out / "splits" / "all.txt", "".join(f"{i}\n" for i in kept["id"]))
    return kept


def build_features(poses: Path, splits_dir: Path, out: Path, settings: FeatureSettings,
                   cache_dir: Path | None = None) -> dict[str, Any]:
    """Run the whole features stage into ``out`` (a fresh temporary folder); returns the report.

    With a ``cache_dir`` each clip's features are kept there by content (``FeatureCache``) and reused; the
    returned report counts the hits and misses, report.json does not (it must not depend on the cache)."""
    clips = read_clips(poses / "clips.parquet")
    split_of = read_splits(splits_dir)
    cache = FeatureCache(cache_dir, settings) if cache_dir else None
    result = extract_clips(open_poses(poses), clips, split_of, out, settings, cache)
    write_statistics(result.moments, out, splits_dir / "train.txt")
    kept = write_manifest(clips, result.written, split_of, out)
    report = {
        "clips_in": len(clips),
        "clips_written": len(result.written),
        "frames_written": int(sum(result.written.values())),
        "skipped": {reason: result.skipped[reason] for reason in SKIP_REASONS},
        "clips_per_split": {name: int((kept["split"] == name).sum()) for name in (*SPLITS, "none")},
        "stats_frames": result.moments.count,
        "feet_threshold": settings.feet_threshold,
        "fix_root_wrap": settings.fix_root_wrap,
    }
    write_json(out / "report.json", report)
    if cache:
        report["feature_cache"] = {"hits": result.cache_hits, "misses": result.cache_misses}
    return report
