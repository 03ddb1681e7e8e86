"""Text-motion pairs for TMR: one sample per caption (seg_id), for the whole body or one body part.

A sample is the caption's motion segment (frames [start, end) of ``new_joint_vecs/<id>.npy``, at
most ``max_frames`` long), restricted to the part's feature dims and normalised with that part's
training-split statistics (``part_stats.npz``), together with the text's token features and its
sentence embedding (for filtering InfoNCE negatives). The whole-body encoder reads the caption,
a part encoder the part text (``<part>_text`` of ``part_texts.parquet``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from motion.core.errors import DataError
from motion.core.parts import PART_INDICES, PART_NAMES

WHOLE_BODY = "whole_body"
ENCODER_NAMES: tuple[str, ...] = (WHOLE_BODY, *PART_NAMES)
FPS = 20
STD_FLOOR = 1e-6  # dims whose training std is below this are only centred (they are constant)


class TextFeatures(Protocol):
    """What the dataset needs from ``motion.text.embeddings.TextEmbeddings``."""

    token_dim: int
    sentence_dim: int

    def tokens(self, text: str) -> np.ndarray: ...

    def sentences(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Segment:
    """One caption and the frames [first, last) of its motion that it describes."""

    seg_id: str
    motion_id: str
    text: str
    first: int
    last: int


def check_encoder_name(name: str) -> str:
    """Return ``name`` if it is whole_body or one of the six parts, else raise ValueError."""
    if name not in ENCODER_NAMES:
        raise ValueError(f"unknown TMR encoder {name!r}; choose one of {', '.join(ENCODER_NAMES)}")
    return name


def text_column(name: str) -> str:
    """Column of ``part_texts.parquet`` an encoder reads: the caption, or the part's text."""
    return "caption" if check_encoder_name(name) == WHOLE_BODY else f"{name}_text"


def feature_dims(name: str) -> np.ndarray | None:
    """Indices into the 263 HumanML3D dims for a part, None for the whole body."""
    return None if check_encoder_name(name) == WHOLE_BODY else PART_INDICES[name]


def read_split(features_dir: str | Path, split: str) -> list[str]:
    """Motion ids of ``splits/<split>.txt`` (incl. mirrored M ids), in file order."""
    path = Path(features_dir) / "splits" / f"{split}.txt"
    if not path.is_file():
        raise DataError(path, "split file is missing", "run `dvc repro features`")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_part_stats(path: str | Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-dim (mean, std) of an encoder's features from ``part_stats.npz``; tiny stds become 1."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "part statistics are missing", "run `dvc repro features`")
    with np.load(path) as stats:
        keys = (f"{name}_mean", f"{name}_std")
        missing = [k for k in keys if k not in stats]
        if missing:
            raise DataError(path, f"keys {missing} are missing", "rerun `dvc repro features` with the current code")
        mean, std = (stats[k].astype(np.float32) for k in keys)
    return mean, np.where(std > STD_FLOOR, std, 1.0).astype(np.float32)


def segment_frames(start: float, end: float, num_frames: int, fps: int = FPS) -> tuple[int, int]:
    """Frames [first, last) of a caption given its start/end in seconds (0 and 0 mean the whole clip)."""
    if end <= 0.0:
        return 0, num_frames
    first = min(max(int(start * fps), 0), num_frames)
    return first, min(max(int(end * fps), first), num_frames)


def read_segments(texts_parquet: str | Path, features_dir: str | Path, motion_ids: list[str], name: str,
                  min_frames: int = 0, max_frames: int | None = None) -> list[Segment]:
    """Segments of the given motions for encoder ``name``, sorted by motion then caption index.

    Segments shorter than ``min_frames`` (or, when given, longer than ``max_frames``) are dropped:
    TMR keeps 2-10 s captions in train and val and everything in test.
    """
    import pandas as pd

    texts_parquet = Path(texts_parquet)
    if not texts_parquet.is_file():
        raise DataError(texts_parquet, "caption table is missing", "run `dvc repro split_texts`")
    column = text_column(name)
    table = pd.read_parquet(texts_parquet)
    needed = {"seg_id", "motion_id", "caption_index", "start", "end", column}
    if not needed <= set(table.columns):
        raise DataError(texts_parquet, f"columns {sorted(needed - set(table.columns))} are missing",
                        "rerun `dvc repro split_texts`")
    wanted = set(motion_ids)
    table = table[table["motion_id"].isin(wanted)].sort_values(["motion_id", "caption_index"], kind="stable")
    vec_dir = Path(features_dir) / "new_joint_vecs"
    lengths: dict[str, int] = {}
    segments = []
    for row in table.itertuples(index=False):
        motion_id = str(row.motion_id)
        if motion_id not in lengths:
            lengths[motion_id] = _num_frames(vec_dir / f"{motion_id}.npy")
        first, last = segment_frames(float(row.start), float(row.end), lengths[motion_id])
        length = last - first
        if length < max(min_frames, 1) or (max_frames is not None and length > max_frames):
            continue
        text = getattr(row, column)
        if not isinstance(text, str) or not text.strip():
            raise DataError(texts_parquet, f"seg_id {row.seg_id} has no {column!r}", "rerun `dvc repro split_texts`")
        segments.append(Segment(str(row.seg_id), motion_id, text, first, last))
    return segments


def _num_frames(path: Path) -> int:
    if not path.is_file():
        raise DataError(path, "motion features are missing", "run `dvc repro features`")
    return int(np.load(path, mmap_mode="r").shape[0])


def first_caption_indices(segments: list[Segment]) -> list[int]:
    """Index of the first segment of every motion (TMR's val/test pairs), in order."""
    seen: set[str] = set()
    out = []
    for i, seg in enumerate(segments):
        if seg.motion_id not in seen:
            seen.add(seg.motion_id)
            out.append(i)
    return out


def epoch_indices(segments: list[Segment], epoch: int, seed: int, one_per_motion: bool = True,
                  shuffle: bool = True) -> list[int]:
    """The samples of one training epoch: a random caption per motion (TMR) or all, in a seeded order."""
    rng = np.random.default_rng([seed, epoch])
    if one_per_motion:
        by_motion: dict[str, list[int]] = {}
        for i, seg in enumerate(segments):
            by_motion.setdefault(seg.motion_id, []).append(i)
        order = [int(rng.choice(idx)) for _, idx in sorted(by_motion.items())]
    else:
        order = list(range(len(segments)))
    if shuffle:
        order = [order[i] for i in rng.permutation(len(order))]
    return order


class TextMotionDataset(Dataset):
    """Normalised (part) motion segments paired with their texts' token and sentence features."""

    def __init__(self, features_dir: str | Path, segments: list[Segment], name: str, mean: np.ndarray,
                 std: np.ndarray, embeddings: TextFeatures, max_frames: int | None = None,
                 random_crop: bool = False, seed: int = 0, embeddings_dir: str | Path = "embeddings") -> None:
        self.vec_dir = Path(features_dir) / "new_joint_vecs"
        self.segments = segments
        self.name = check_encoder_name(name)
        self.dims = feature_dims(name)
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)
        self.embeddings = embeddings
        self.max_frames = max_frames
        self.random_crop = random_crop
        self.seed = seed
        self.epoch = 0
        texts = sorted({s.text for s in segments})
        try:
            sentences = np.asarray(embeddings.sentences(texts), dtype=np.float32) if texts else np.zeros((0, 1))
        except KeyError as err:
            raise DataError(embeddings_dir, f"no embedding for a text: {err}", "rerun `dvc repro embed_texts`") from None
        self.sentence_of = {t: sentences[i] for i, t in enumerate(texts)}

    @property
    def motion_dim(self) -> int:
        """Width of the motion features this dataset yields."""
        return len(self.mean)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose seeded random crops ``__getitem__`` draws."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.segments)

    def motion(self, index: int) -> np.ndarray:
        """The normalised (T, F) motion features of sample ``index`` (cropped to max_frames)."""
        seg = self.segments[index]
        path = self.vec_dir / f"{seg.motion_id}.npy"
        if not path.is_file():
            raise DataError(path, "motion features are missing", "run `dvc repro features`")
        first, last = seg.first, seg.last
        if self.max_frames is not None and last - first > self.max_frames:
            slack = last - first - self.max_frames
            if self.random_crop:
                first += int(np.random.default_rng([self.seed, self.epoch, index]).integers(0, slack + 1))
            last = first + self.max_frames
        feats = np.load(path, mmap_mode="r")[first:last]
        if self.dims is not None:
            feats = feats[:, self.dims]
        if feats.shape[-1] != len(self.mean):
            raise DataError(path, f"features have {feats.shape[-1]} dims, the statistics {len(self.mean)}",
                            "rerun `dvc repro features`")
        return ((feats - self.mean) / self.std).astype(np.float32)

    def __getitem__(self, index: int) -> dict[str, Any]:
        seg = self.segments[index]
        return {
            "motion": torch.from_numpy(self.motion(index)),
            "text": torch.from_numpy(np.asarray(self.embeddings.tokens(seg.text), dtype=np.float32)),
            "sentence": torch.from_numpy(self.sentence_of[seg.text]),
            "seg_id": seg.seg_id,
            "motion_id": seg.motion_id,
        }


def pad_sequences(seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Zero-pad (T_i, F) tensors to (B, max T, F) with a (B, max T) bool mask of valid steps."""
    longest = max(len(s) for s in seqs)
    out = seqs[0].new_zeros((len(seqs), longest, seqs[0].shape[-1]))
    mask = torch.zeros((len(seqs), longest), dtype=torch.bool)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
        mask[i, : len(s)] = True
    return out, mask


def collate_text_motion(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples: padded motion/text with masks, stacked sentence embeddings, id lists."""
    motion, motion_mask = pad_sequences([it["motion"] for it in items])
    text, text_mask = pad_sequences([it["text"] for it in items])
    return {
        "motion": motion,
        "motion_mask": motion_mask,
        "text": text,
        "text_mask": text_mask,
        "sentence": torch.stack([it["sentence"] for it in items]),
        "seg_id": [it["seg_id"] for it in items],
        "motion_id": [it["motion_id"] for it in items],
    }


def load_text_motion(features_dir: str | Path, texts_dir: str | Path, embeddings: TextFeatures, name: str,
                     split: str, min_frames: int = 0, max_frames: int | None = None, filter_lengths: bool = False,
                     random_crop: bool = False, seed: int = 0, embeddings_dir: str | Path = "embeddings",
                     crop_frames: int | None = None) -> TextMotionDataset:
    """The dataset of one split for encoder ``name`` from the features, split_texts and embeddings folders.

    With ``filter_lengths`` (TMR's train/val rule) captions outside [min_frames, max_frames] are
    dropped. Samples longer than ``crop_frames`` (default ``max_frames``) are cropped to it, at a
    seeded random offset with ``random_crop``, else from their first frame.
    """
    features_dir = Path(features_dir)
    mean, std = load_part_stats(features_dir / "part_stats.npz", check_encoder_name(name))
    ids = read_split(features_dir, split)
    segments = read_segments(Path(texts_dir) / "part_texts.parquet", features_dir, ids, name,
                             min_frames if filter_lengths else 0, max_frames if filter_lengths else None)
    if not segments:
        raise DataError(Path(features_dir) / "splits" / f"{split}.txt",
                        f"no caption of the {split} split is usable for {name} (lengths {min_frames}-{max_frames})",
                        "check the split files, part_texts.parquet and tmr.data lengths in params.yaml")
    crop = max_frames if crop_frames is None else crop_frames if max_frames is None else min(crop_frames, max_frames)
    return TextMotionDataset(features_dir, segments, name, mean, std, embeddings, crop, random_crop, seed,
                             embeddings_dir)
