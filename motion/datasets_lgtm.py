"""LGTM's training data: one sample per caption (seg_id), randomly cropped, normalised, split into parts.

As in LGTM: a caption's frame span comes from its start/end seconds (0/0 = the whole clip) at 20 fps,
spans outside [min_frames, max_frames) are dropped, every draw crops the span to a multiple of the
unit length 4 (shortened by one more unit with probability 1/3) at a random offset, and the
HumanML3D-normalised (Mean/Std) features are split into the six part vectors and zero-padded to
the window with a valid-frame mask. Text conditions are the cached TMR latents of the caption.
Random crops are seeded by (seed, epoch, index), so they do not depend on workers, ranks or resumes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from motion.data.captions import read_captions
from motion.core.errors import DataError
from motion.core.parts import FEATURE_DIM, PART_NAMES, split_parts

FPS = 20
UNIT_LENGTH = 4


@dataclass(frozen=True)
class Segment:
    """One caption of one motion: the LGTM training sample."""

    seg_id: str
    motion_id: str
    caption: str
    start: int  # first feature frame
    end: int    # one past the last feature frame


def read_split(features_dir: str | Path, split: str) -> list[str]:
    """Motion ids of one split (``splits/<split>.txt`` of the features stage)."""
    path = Path(features_dir) / "splits" / f"{split}.txt"
    if not path.is_file():
        raise DataError(path, "split file is missing", "run `dvc repro features`")
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def read_segments(features_dir: str | Path, texts_dir: str | Path, motion_ids: Sequence[str],
                  min_frames: int = 40, max_frames: int = 200) -> list[Segment]:
    """Captions of the given motions whose frame span lies in [min_frames, max_frames), sorted by seg_id."""
    segments = []
    for motion_id in sorted(motion_ids):
        path = Path(features_dir) / "new_joint_vecs" / f"{motion_id}.npy"
        if not path.is_file():
            raise DataError(path, "feature file is missing", "run `dvc repro features`")
        frames = np.load(path, mmap_mode="r").shape[0]
        for i, cap in enumerate(read_captions(Path(texts_dir) / f"{motion_id}.txt")):
            whole = cap.start == 0 and cap.end == 0
            start, end = (0, frames) if whole else (int(cap.start * FPS), min(int(cap.end * FPS), frames))
            if min_frames <= end - start < max_frames:
                segments.append(Segment(f"{motion_id}_{i}", motion_id, cap.text, start, end))
    return segments


def read_part_texts(path: str | Path) -> dict[str, dict[str, str]]:
    """{seg_id: {part: text}} from ``body_part_annotations.json`` ({seg_id: {part: {action, text}}})."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "part annotations are missing", "run `dvc repro split_texts`")
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {seg: {p: str(a[p]["text"]) for p in PART_NAMES if p in a} for seg, a in raw.items()}


def segment_texts(segment: Segment, part_texts: dict[str, dict[str, str]]) -> list[str]:
    """The 7 texts of a caption: the caption, then each part's text (the caption where it has none, as LGTM)."""
    parts = part_texts.get(segment.seg_id, {})
    return [segment.caption] + [parts.get(p, segment.caption) for p in PART_NAMES]


def load_normalisation(features_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D's group-scaled Mean.npy / Std.npy (263,) of the features stage."""
    out = []
    for name in ("Mean.npy", "Std.npy"):
        path = Path(features_dir) / name
        if not path.is_file():
            raise DataError(path, "normalisation statistics are missing", "run `dvc repro features`")
        arr = np.load(path).astype(np.float32)
        if arr.shape != (FEATURE_DIM,) or not np.all(np.isfinite(arr)):
            raise DataError(path, f"expected {FEATURE_DIM} finite values, got shape {arr.shape}", "rerun the features stage")
        out.append(arr)
    if np.any(out[1] <= 0):
        raise DataError(Path(features_dir) / "Std.npy", "has zero or negative entries", "rerun the features stage")
    return out[0], out[1]


def crop_span(length: int, window: int, rng: np.random.Generator, unit_length: int = UNIT_LENGTH) -> tuple[int, int]:
    """LGTM's random crop of a span of ``length`` frames: (offset, cropped length), at most ``window``."""
    units = length // unit_length
    if units > 1 and rng.random() < 1 / 3:
        units -= 1
    cropped = max(units * unit_length, 1) if units else length
    offset = int(rng.integers(0, length - cropped + 1))
    if cropped > window:
        offset += int(rng.integers(0, cropped - window + 1))
        cropped = window
    return offset, cropped


class LGTMDataset(Dataset):
    """Items: ``parts`` {part: (window, d_part)}, ``mask`` (window,), ``text`` (7, dim), ``length``, ``seg_id``."""

    def __init__(self, segments: Sequence[Segment], features_dir: str | Path, mean: np.ndarray, std: np.ndarray,
                 latents: Any, window: int, seed: int = 0) -> None:
        missing = [s.seg_id for s in segments if s.seg_id not in latents]
        if missing:
            raise DataError(features_dir, f"{len(missing)} captions (e.g. {missing[0]}) have no cached text latents",
                            "delete the text-latent cache and rerun train_lgtm")
        self.segments = list(segments)
        self.features_dir = Path(features_dir)
        self.mean, self.std = mean, std
        self.latents = latents
        self.window = window
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random crops of this epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int) -> dict[str, Any]:
        seg = self.segments[index]
        motion = np.load(self.features_dir / "new_joint_vecs" / f"{seg.motion_id}.npy", mmap_mode="r")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        offset, length = crop_span(seg.end - seg.start, self.window, rng)
        start = seg.start + offset
        clip = (np.asarray(motion[start:start + length], dtype=np.float32) - self.mean) / self.std
        padded = np.zeros((self.window, FEATURE_DIM), dtype=np.float32)
        padded[:length] = clip
        mask = np.zeros(self.window, dtype=bool)
        mask[:length] = True
        parts = {p: torch.from_numpy(np.ascontiguousarray(v)) for p, v in split_parts(padded).items()}
        return {"parts": parts, "mask": torch.from_numpy(mask), "length": length,
                "text": torch.from_numpy(self.latents.get(seg.seg_id).astype(np.float32)), "seg_id": seg.seg_id}
