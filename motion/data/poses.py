"""HumanML3D's pose extraction: AMASS sequences -> 20 fps y-up joint clips, their mirrors and captions.

Per source sequence: read it, keep every ``int(fps / 20)``-th frame, run the body model, swap to
y-up (``pose_data``); per index.csv row: cut the clip (``cut_clip``) and its mirror (``M`` id).
Everything is checked first (``preflight``): missing or malformed files stop the run before any
heavy work, or are skipped and counted when the user asks for it (``on_missing``/``on_invalid``).
"""
from __future__ import annotations

import hashlib
import logging
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from motion.core.conventions import amass_to_pose_data, cut_clip, downsample_step
from motion.core.errors import DataError
from motion.core.io import save_npy, write_json, write_parquet
from motion.core.skeleton import NUM_JOINTS, mirror_joints
from motion.data.amass import (
    AMASS_SITE,
    DATASET_ALIASES,
    HUMANACT12,
    ClipSpec,
    MotionHeader,
    candidate_paths,
    check_motion_file,
    dataset_of,
    downsample,
    load_amass,
    load_pose_data,
    read_index,
    resolve_source,
    smplx_variant_of,
)
from motion.data.body_model import BodyModel
from motion.data.captions import (
    Caption,
    PartAnnotations,
    mirror_caption,
    mirror_part_annotation,
    read_captions,
    read_part_annotations,
    write_caption_table,
)
from motion.data.clipstore import CAPTION_TABLE, POSE_JOINTS, ClipWriter

log = logging.getLogger(__name__)

SKIP_REASONS = ("missing_file", "invalid_file", "missing_text", "too_short")


@dataclass(frozen=True)
class PoseSettings:
    """The ``poses:`` section of params.yaml."""

    body_model: Literal["builtin", "smplh"]  # builtin (FK with HumanML3D's target skeleton) | smplh (smplx)
    smplh_dir: str  # folder with SMPL-H model files {male,female,neutral}/model.npz (smplh only)
    target_fps: int
    min_frames: int  # clips shorter than this (at target_fps) are skipped and counted
    batch_frames: int  # frames per body-model batch
    on_missing: Literal["error", "skip"]  # a motion or caption file named by index.csv is absent
    on_invalid: Literal["error", "skip"]  # a motion file is malformed (corrupt, wrong format, NaN)
    cache: bool  # keep each source's pose data by content in the cache folder and reuse it (same bytes out)


@dataclass
class SourcePlan:
    """One source sequence to process and the clips cut from it."""

    source_path: str
    header: MotionHeader
    clips: list[ClipSpec]


@dataclass
class Plan:
    """What preflight found: sources to process, captions per clip, and skipped clips by reason."""

    sources: list[SourcePlan]
    captions: dict[str, list[Caption]]
    skipped: dict[str, dict[str, str]] = field(default_factory=lambda: {r: {} for r in SKIP_REASONS})
    problems: dict[str, str] = field(default_factory=dict)  # file -> why it was skipped


def _missing_fix(amass_root: Path, datasets: Counter) -> str:
    """What to download for the missing sources of each HumanML3D dataset folder."""
    fixes = []
    archives = [f"{DATASET_ALIASES[d][0]} (HumanML3D's {d})" if d in DATASET_ALIASES else d
                for d in sorted(datasets) if d != HUMANACT12]
    if archives:
        fixes.append(f"download the 'SMPL+H G' archives of {', '.join(archives)} from {AMASS_SITE} "
                     f"and extract them under {amass_root}")
    if HUMANACT12 in datasets:
        fixes.append(f"copy HumanML3D's pose_data/humanact12 folder to {amass_root / HUMANACT12}")
    return "; ".join(fixes + ["or set poses.on_missing: skip"])


def _skip(plan: Plan, reason: str, clips: list[ClipSpec]) -> None:
    for clip in clips:
        plan.skipped[reason][clip.clip_id] = clip.source_path


def _missing_error(missing: list[tuple[str, list[ClipSpec]]], amass_root: Path, sources: int) -> DataError:
    """One error for every missing source: the first one's expected paths, the counts, what to download."""
    datasets = Counter(dataset_of(s) for s, clips in missing for _ in clips)
    first_source, first_clips = missing[0]
    expected = candidate_paths(amass_root, first_source)
    also = f" (also looked for {', '.join(str(p) for p in expected[1:])})" if len(expected) > 1 else ""
    return DataError(expected[0] if expected else first_source,
                     f"motion file of clip {first_clips[0].clip_id} is missing{also}; {len(missing)} of "
                     f"{sources} source files ({sum(datasets.values())} clips) are missing",
                     _missing_fix(amass_root, datasets))


def _locate_sources(by_source: dict[str, list[ClipSpec]], amass_root: Path, settings: PoseSettings,
                    plan: Plan) -> DataError | None:
    """Find and check the file behind every source; missing/invalid ones are skipped, or returned as one
    error to raise (naming the first invalid file, the count of invalid and of missing ones)."""
    missing: list[tuple[str, list[ClipSpec]]] = []
    invalid: list[DataError] = []
    for source in tqdm(sorted(by_source), desc="poses preflight", unit="file", leave=False):
        clips = by_source[source]
        path = resolve_source(amass_root, source) or smplx_variant_of(amass_root, source)
        if path is None:
            missing.append((source, clips))
            continue
        try:
            plan.sources.append(SourcePlan(source, check_motion_file(path, source), clips))
        except DataError as e:  # includes SMPL-X files found where the SMPL+H one was expected
            invalid.append(e)
            plan.problems[str(path)] = str(e)
            _skip(plan, "invalid_file", clips)
    missing_error = _missing_error(missing, amass_root, len(by_source)) if missing else None
    if invalid:
        if settings.on_invalid == "error":  # one error naming every kind of problem found in this pass
            first = invalid[0]
            more = f" ({len(invalid) - 1} more files are invalid too)" if len(invalid) > 1 else ""
            also = (f"; also {len(missing)} source files are missing (first: {missing_error.path})"
                    if missing_error and settings.on_missing == "error" else "")
            return DataError(first.path, first.problem + more + also, first.fix)
        log.warning("skipping the clips of %d invalid files, e.g. %s", len(invalid), invalid[0])
    if missing_error:
        if settings.on_missing == "error":
            return missing_error
        log.warning("skipping %d clips: %s", sum(len(clips) for _, clips in missing), missing_error)
        for source, clips in missing:
            plan.problems[str(candidate_paths(amass_root, source)[0])] = "missing"
            _skip(plan, "missing_file", clips)
    return None


def _missing_captions(clips: list[ClipSpec], texts_dir: Path) -> DataError | None:
    """One error naming the first clip without a caption file and how many there are."""
    absent = [clip for clip in clips if not (texts_dir / f"{clip.clip_id}.txt").is_file()]
    if not absent:
        return None
    more = f"; {len(absent)} of {len(clips)} clips have no caption file" if len(absent) > 1 else ""
    return DataError(texts_dir / f"{absent[0].clip_id}.txt", f"caption file is missing{more}",
                     "add texts/<id>.txt for every clip in index.csv, or set poses.on_missing: skip")


def _attach_captions(plan: Plan, texts_dir: Path, settings: PoseSettings) -> None:
    """Read every clip's captions; mirrored ones come from ``M<id>.txt`` or by swapping left/right."""
    kept: list[SourcePlan] = []
    for source in plan.sources:
        clips = []
        for clip in source.clips:
            text_file = texts_dir / f"{clip.clip_id}.txt"
            if not text_file.is_file() and settings.on_missing == "skip":
                plan.skipped["missing_text"][clip.clip_id] = clip.source_path
                continue
            plan.captions[clip.clip_id] = read_captions(text_file)
            mirror_file = texts_dir / f"M{clip.clip_id}.txt"
            plan.captions["M" + clip.clip_id] = (read_captions(mirror_file) if mirror_file.is_file()
                                                 else [mirror_caption(c) for c in plan.captions[clip.clip_id]])
            clips.append(clip)
        if clips:
            kept.append(SourcePlan(source.source_path, source.header, clips))
    if plan.skipped["missing_text"]:
        log.warning("skipping %d clips without a caption file in %s", len(plan.skipped["missing_text"]), texts_dir)
    plan.sources = kept


def preflight(rows: list[ClipSpec], amass_root: str | Path, texts_dir: str | Path, body_model: BodyModel,
              settings: PoseSettings) -> Plan:
    """Check every source, caption file and body-model file before any heavy work."""
    by_source: dict[str, list[ClipSpec]] = defaultdict(list)
    for row in rows:
        by_source[row.source_path].append(row)
    plan = Plan(sources=[], captions={})
    errors = [_locate_sources(by_source, Path(amass_root), settings, plan)]
    if settings.on_missing == "error":  # caption files are checked in the same pass as the motion files
        errors.append(_missing_captions([c for s in plan.sources for c in s.clips], Path(texts_dir)))
    found = [e for e in errors if e is not None]
    if found:  # one error naming every kind of problem (the first of each and the counts)
        first = found[0]
        raise DataError(first.path, first.problem + "".join(f"; also {e.path}: {e.problem}" for e in found[1:]),
                        first.fix)
    _attach_captions(plan, Path(texts_dir), settings)
    body_model.check(s.header.gender for s in plan.sources if s.header.kind == "amass")
    return plan


def source_pose_data(source: SourcePlan, body_model: BodyModel, target_fps: int = 20) -> np.ndarray:
    """A whole source sequence as HumanML3D ``pose_data``: (T20, 22, 3) joints, y-up, at ``target_fps``."""
    if source.header.kind == "pose_data":
        return load_pose_data(source.header.path)
    sequence = load_amass(source.header.path)
    step = downsample_step(sequence.fps, str(source.header.path), target_fps)
    poses, trans = downsample(sequence, step)
    return amass_to_pose_data(body_model.joints(poses, trans, sequence.betas, sequence.gender))


CACHE_VERSION = 1  # bump when source_pose_data's numbers change


def source_content_key(header: MotionHeader, body_model: BodyModel, target_fps: int) -> str:
    """A key that changes whenever a source's pose data would: the file's content, the body model, the rate.

    An AMASS .npz is keyed by its members' names, sizes and CRC-32s from the zip directory (the
    content, without reading the poses); a pose_data .npy by a hash of its bytes. The body model
    enters by its ``cache_id`` (its name when it has none)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{CACHE_VERSION}|{getattr(body_model, 'cache_id', body_model.name)}|{target_fps}|".encode())
    if header.kind == "amass":
        with zipfile.ZipFile(header.path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                digest.update(f"{info.filename}:{info.file_size}:{info.CRC};".encode())
    else:
        digest.update(header.path.read_bytes())
    return digest.hexdigest()


class PoseDataCache:
    """Whole-source ``pose_data`` (T20, 22, 3) float32 by content key, outside the stage's outputs: a rerun
    (after new files were added, or after an interrupted run) computes only sources it has not seen."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        """The cached pose data of ``key``, or None."""
        path = self._path(key)
        if not path.is_file():
            self.misses += 1
            return None
        self.hits += 1
        return np.load(path)

    def save(self, key: str, pose_data: np.ndarray) -> None:
        """Store one source's pose data (atomically: an interrupted write leaves no entry)."""
        save_npy(self._path(key), pose_data)


def cached_pose_data(source: SourcePlan, body_model: BodyModel, target_fps: int,
                     cache: PoseDataCache | None) -> np.ndarray:
    """``source_pose_data`` as float32 (the precision of the clips), from ``cache`` when it holds it."""
    key = source_content_key(source.header, body_model, target_fps) if cache else ""
    pose_data = cache.load(key) if cache else None
    if pose_data is None:
        pose_data = source_pose_data(source, body_model, target_fps).astype(np.float32)
        if cache:
            cache.save(key, pose_data)
    return pose_data


def clip_and_mirror(pose_data: np.ndarray, clip: ClipSpec) -> tuple[np.ndarray, np.ndarray]:
    """One clip (T, 22, 3) float32 in HumanML3D's frame and its mirrored copy."""
    joints = cut_clip(pose_data, clip.start_frame, clip.end_frame, clip.source_path).astype(np.float32)
    return joints, mirror_joints(joints)


def part_texts_for(ids: list[str], annotations: PartAnnotations) -> PartAnnotations:
    """Part annotations of the written original clips ``ids`` and of their mirrors (``M`` seg_ids taken
    from ``annotations`` when present, else made by ``mirror_part_annotation``)."""
    by_motion: dict[str, list[str]] = defaultdict(list)
    for seg_id in annotations:
        by_motion[seg_id.rsplit("_", 1)[0]].append(seg_id)
    out: PartAnnotations = {}
    for clip_id in ids:
        for seg_id in by_motion.get(clip_id, []):
            out[seg_id] = annotations[seg_id]
            mirror_id = "M" + seg_id
            out[mirror_id] = annotations.get(mirror_id) or mirror_part_annotation(annotations[seg_id])
    return out


def _write_source(source: SourcePlan, body_model: BodyModel, settings: PoseSettings, cache: PoseDataCache | None,
                  plan: Plan, index_csv: str | Path, store: ClipWriter, captions: dict[str, list[Caption]],
                  records: list[dict[str, Any]]) -> None:
    """The clips of one source file and their mirrors into ``store``; captions and clip rows collected."""
    try:
        pose_data = cached_pose_data(source, body_model, settings.target_fps, cache)
    except DataError as e:
        if settings.on_invalid == "error":
            raise
        log.warning("skipping %d clips: %s", len(source.clips), e)
        plan.problems[str(source.header.path)] = str(e)
        _skip(plan, "invalid_file", source.clips)
        return
    for clip in source.clips:
        joints, mirrored = clip_and_mirror(pose_data, clip)
        if joints.shape[0] == 0:  # start_frame at or past the end of the (trimmed) sequence
            problem = DataError(index_csv, f"clip {clip.clip_id}: start_frame {clip.start_frame} is past the end "
                                f"of {clip.source_path} ({pose_data.shape[0]} frames at {settings.target_fps} fps)",
                                "fix the row (or restore HumanML3D's index.csv), or set poses.on_invalid: skip")
            if settings.on_invalid == "error":
                raise problem
            log.warning("skipping: %s", problem)
            plan.skipped.setdefault("past_end", {})[clip.clip_id] = clip.source_path
            continue
        if joints.shape[0] < settings.min_frames:
            plan.skipped["too_short"][clip.clip_id] = clip.source_path
            continue
        for clip_id, data, is_mirror in ((clip.clip_id, joints, False), ("M" + clip.clip_id, mirrored, True)):
            store.add(clip_id, **{POSE_JOINTS: data[:, :NUM_JOINTS]})
            captions[clip_id] = plan.captions[clip_id]
            records.append({"id": clip_id, "source_path": clip.source_path, "start_frame": clip.start_frame,
                            "end_frame": clip.end_frame, "frames": int(data.shape[0]), "mirrored": is_mirror,
                            "num_captions": len(plan.captions[clip_id])})


def extract_poses(index_csv: str | Path, amass_root: str | Path, annotations_dir: str | Path, out_dir: str | Path,
                  body_model: BodyModel, settings: PoseSettings, cache_dir: str | Path | None = None
                  ) -> dict[str, Any]:
    """Run the whole poses stage into ``out_dir`` (a fresh temporary folder); returns the report.

    With ``settings.cache`` and a ``cache_dir``, each source's pose data is kept there by content
    (``PoseDataCache``) and reused: the clips are the same bytes. The returned report counts the cache's
    hits and misses; report.json does not (an output must not depend on the cache's history)."""
    cache = PoseDataCache(cache_dir) if settings.cache and cache_dir else None
    annotations_dir, out_dir = Path(annotations_dir), Path(out_dir)
    rows = read_index(index_csv)
    plan = preflight(rows, amass_root, annotations_dir / "texts", body_model, settings)
    records: list[dict[str, Any]] = []
    captions: dict[str, list[Caption]] = {}
    with ClipWriter(out_dir, {POSE_JOINTS: ((NUM_JOINTS, 3), np.float32)}) as store:
        for source in tqdm(plan.sources, desc="poses", unit="file"):
            _write_source(source, body_model, settings, cache, plan, index_csv, store, captions, records)
    write_caption_table(out_dir / CAPTION_TABLE, captions)

    if not records:
        counts = ", ".join(f"{reason} {len(ids)}" for reason, ids in plan.skipped.items() if ids)
        raise DataError(index_csv, f"no clip was written (skipped: {counts or 'none'})",
                        "check the AMASS files, captions and poses.min_frames")
    records.sort(key=lambda r: r["id"])
    clips = pd.DataFrame.from_records(records)
    clips = clips.astype({"start_frame": "int64", "end_frame": "int64", "frames": "int64", "num_captions": "int64"})
    write_parquet(out_dir / "clips.parquet", clips)

    part_file = annotations_dir / "part_texts.json"
    if part_file.is_file():
        originals = list(clips.loc[~clips["mirrored"], "id"])
        annotations = read_part_annotations(part_file, "rerun the download stage")
        write_json(out_dir / "part_texts.json", part_texts_for(originals, annotations))

    written = int((~clips["mirrored"]).sum())
    report = {
        "body_model": body_model.name,
        "target_fps": settings.target_fps,
        "min_frames": settings.min_frames,
        "clips_in_index": len(rows),
        "source_files": len(plan.sources),
        "clips_written": written,
        "mirrored_written": int(clips["mirrored"].sum()),
        "frames_written": int(clips.loc[~clips["mirrored"], "frames"].sum()),
        "skipped": {r: len(v) for r, v in plan.skipped.items()},
        "skipped_ids": {r: sorted(v) for r, v in plan.skipped.items()},
        "problem_files": dict(sorted(plan.problems.items())),
    }
    write_json(out_dir / "report.json", report)
    if cache:
        report["pose_cache"] = {"hits": cache.hits, "misses": cache.misses}
    return report
