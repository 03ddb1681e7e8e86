"""Text-motion pairs of both models: one sample per caption (seg_id), read from the features folder.

Shared by TMR and LGTM: the split files (``read_split``), the caption ``Segment`` (frames [start, end)
of a clip of the features store, ``motion.data.clipstore``, and its text) and ``read_segments``, which
turns captions timed in seconds into segments under a named ``SpanRule``: each model keeps the span protocol of its
reference code (see ``SpanRule``), so their datasets differ on a few captions by design.

TMR (``TextMotionDataset``): the whole body or one part's feature dims, normalised with that part's
training-split statistics (``part_stats.npz``), paired with the text's token features and sentence
embedding (for filtering InfoNCE negatives); the whole-body encoder reads the caption, a part
encoder the part text (``<part>_text`` of ``part_texts.parquet``).

LGTM (``LGTMDataset``): every draw crops the span to a multiple of the unit length 4 (shortened by
one more unit with probability 1/3) at a random offset; the HumanML3D-normalised (Mean/Std)
features are split into the six part vectors and zero-padded to the window with a valid-frame mask.
Text conditions are the cached TMR latents of the caption's 7 texts (``segment_texts``). Random
crops of both datasets are seeded by (seed, epoch, index), so they do not depend on workers, ranks or resumes.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from motion.core.conventions import TARGET_FPS
from motion.core.errors import DataError
from motion.core.parts import FEATURE_DIM, PART_INDICES, PART_NAMES, TEXT_SLOTS, WHOLE_BODY, split_parts
from motion.data.captions import Caption, PartAnnotations
from motion.data.clipstore import FEATURE_VECS, open_features

PART_STATS_FILE = "part_stats.npz"  # {encoder}_mean / {encoder}_std of the TMR motion encoders' inputs
STD_FLOOR = 1e-6  # dims whose training std is below this are only centred (they are constant)
UNIT_LENGTH = 4


class TextFeatures(Protocol):
    """What the TMR dataset needs from ``motion.text.embeddings.TextEmbeddings``."""

    token_dim: int
    sentence_dim: int

    def tokens(self, text: str) -> np.ndarray: ...

    def sentences(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class TimedText:
    """A caption (or one of its part texts) of a motion, timed in seconds (0 and 0: the whole clip)."""

    seg_id: str
    motion_id: str
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Segment:
    """One caption's sample: the frames [start, end) of its motion and the text paired with them
    (the caption, or a part's text for a TMR part encoder)."""

    seg_id: str
    motion_id: str
    text: str
    start: int  # first feature frame
    end: int    # one past the last feature frame


@dataclass(frozen=True)
class SpanRule:
    """How a protocol turns a caption's seconds into frames [start, end) and which lengths it keeps.

    ``"tmr"`` (TMR's loader): ``end <= 0`` means the whole clip, both ends are clamped into the clip,
    and lengths in [max(min_frames, 1), max_frames] are kept (``max_frames`` None: no upper bound;
    TMR keeps 2-10 s captions in train and val and everything in test).
    ``"lgtm"`` (HumanML3D's Text2MotionDataset, which LGTM trains and evaluates on): only 0 and 0
    means the whole clip, the end is cut at the clip's length, and lengths in [min_frames, max_frames)
    are kept. Both are kept as they are so each model sees the captions its reference code sees.
    """

    protocol: Literal["tmr", "lgtm"]
    min_frames: int
    max_frames: int | None

    def __post_init__(self) -> None:
        if self.protocol not in ("tmr", "lgtm"):
            raise ValueError(f"unknown span protocol {self.protocol!r}; choose tmr or lgtm")
        if self.protocol == "lgtm" and self.max_frames is None:
            raise ValueError("the lgtm span protocol needs max_frames")

    def frames(self, start: float, end: float, num_frames: int, fps: int = TARGET_FPS) -> tuple[int, int]:
        """Frames [first, last) of a caption timed ``start``..``end`` seconds in a clip of ``num_frames``."""
        if self.protocol == "tmr":
            if end <= 0.0:
                return 0, num_frames
            first = min(max(int(start * fps), 0), num_frames)
            return first, min(max(int(end * fps), first), num_frames)
        if start == 0 and end == 0:
            return 0, num_frames
        return int(start * fps), min(int(end * fps), num_frames)

    def keeps(self, length: int) -> bool:
        """Whether a segment of ``length`` frames is used."""
        if self.protocol == "tmr":
            return length >= max(self.min_frames, 1) and (self.max_frames is None or length <= self.max_frames)
        return self.min_frames <= length < self.max_frames


def read_split(features_dir: str | Path, split: str) -> list[str]:
    """Motion ids of ``splits/<split>.txt`` of the features stage (incl. mirrored M ids), in file order."""
    path = Path(features_dir) / "splits" / f"{split}.txt"
    if not path.is_file():
        raise DataError(path, "split file is missing", "run `dvc repro features`")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def table_captions(texts_parquet: str | Path, motion_ids: Iterable[str], column: str) -> list[TimedText]:
    """The ``column`` texts of the given motions in ``part_texts.parquet``, by motion then caption index (TMR)."""
    from motion.core.io import read_table

    texts_parquet = Path(texts_parquet)
    table = read_table(texts_parquet, "caption table", ("seg_id", "motion_id", "caption_index", "start", "end", column),
                       "run `dvc repro split_texts`")
    table = table[table["motion_id"].isin(set(motion_ids))].sort_values(["motion_id", "caption_index"], kind="stable")
    out = []
    for row in table.itertuples(index=False):
        text = getattr(row, column)
        if not isinstance(text, str) or not text.strip():
            raise DataError(texts_parquet, f"seg_id {row.seg_id} has no {column!r}", "rerun `dvc repro split_texts`")
        out.append(TimedText(str(row.seg_id), str(row.motion_id), text, float(row.start), float(row.end)))
    return out


def clip_captions(captions: dict[str, list[Caption]], motion_ids: Iterable[str],
                  caption_table: str | Path) -> list[TimedText]:
    """The captions of the given motions, by motion then line (LGTM), from ``captions`` as
    ``read_caption_table`` read them from the poses stage's ``caption_table`` (named in errors)."""
    out = []
    for motion_id in sorted(motion_ids):
        if motion_id not in captions:
            raise DataError(caption_table, f"clip {motion_id} has no captions", "rerun `dvc repro poses`")
        out.extend(TimedText(f"{motion_id}_{i}", motion_id, cap.text, cap.start, cap.end)
                   for i, cap in enumerate(captions[motion_id]))
    return out


def read_segments(features_dir: str | Path, captions: Iterable[TimedText], rule: SpanRule) -> list[Segment]:
    """Segments of ``captions`` (in their order) whose frame span ``rule`` keeps."""
    store = open_features(features_dir)
    segments = []
    for cap in captions:
        start, end = rule.frames(cap.start, cap.end, store.frames(cap.motion_id))
        if rule.keeps(end - start):
            segments.append(Segment(cap.seg_id, cap.motion_id, cap.text, start, end))
    return segments


def segment_texts(segment: Segment, annotations: PartAnnotations) -> list[str]:
    """The 7 texts of a caption: the caption, then each part's text (the caption where it has none, as LGTM)."""
    parts = annotations.get(segment.seg_id, {})
    return [segment.text] + [str(parts[p]["text"]) if p in parts else segment.text for p in PART_NAMES]


# --- TMR ---------------------------------------------------------------------------------------------


def check_encoder_name(name: str) -> str:
    """Return ``name`` if it is whole_body or one of the six parts, else raise ValueError."""
    if name not in TEXT_SLOTS:
        raise ValueError(f"unknown TMR encoder {name!r}; choose one of {', '.join(TEXT_SLOTS)}")
    return name


def text_column(name: str) -> str:
    """Column of ``part_texts.parquet`` an encoder reads: the caption, or the part's text."""
    return "caption" if check_encoder_name(name) == WHOLE_BODY else f"{name}_text"


def feature_dims(name: str) -> np.ndarray | None:
    """Indices into the 263 HumanML3D dims for a part, None for the whole body."""
    return None if check_encoder_name(name) == WHOLE_BODY else PART_INDICES[name]


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
        self.store = open_features(features_dir)
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
            raise DataError(embeddings_dir, f"no embedding for a text: {err}",
                            "rerun `dvc repro embed_texts`") from None
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
        first, last = seg.start, seg.end
        if self.max_frames is not None and last - first > self.max_frames:
            slack = last - first - self.max_frames
            if self.random_crop:
                first += int(np.random.default_rng([self.seed, self.epoch, index]).integers(0, slack + 1))
            last = first + self.max_frames
        feats = self.store.load(seg.motion_id, FEATURE_VECS)[first:last]
        if self.dims is not None:
            feats = feats[:, self.dims]
        if feats.shape[-1] != len(self.mean):
            raise DataError(self.store.folder / f"{FEATURE_VECS}.npy",
                            f"features have {feats.shape[-1]} dims, the statistics {len(self.mean)}",
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
    rule = SpanRule("tmr", min_frames, max_frames) if filter_lengths else SpanRule("tmr", 0, None)
    segments = read_segments(features_dir, table_captions(Path(texts_dir) / "part_texts.parquet", ids,
                                                          text_column(name)), rule)
    if not segments:
        raise DataError(Path(features_dir) / "splits" / f"{split}.txt",
                        f"no caption of the {split} split is usable for {name} (lengths {min_frames}-{max_frames})",
                        "check the split files, part_texts.parquet and tmr.data lengths in params.yaml")
    crop = max_frames if crop_frames is None else crop_frames if max_frames is None else min(crop_frames, max_frames)
    return TextMotionDataset(features_dir, segments, name, mean, std, embeddings, crop, random_crop, seed,
                             embeddings_dir)


# --- LGTM --------------------------------------------------------------------------------------------


def load_normalisation(features_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D's group-scaled Mean.npy / Std.npy (263,) of the features stage."""
    out = []
    for name in ("Mean.npy", "Std.npy"):
        path = Path(features_dir) / name
        if not path.is_file():
            raise DataError(path, "normalisation statistics are missing", "run `dvc repro features`")
        arr = np.load(path).astype(np.float32)
        if arr.shape != (FEATURE_DIM,) or not np.all(np.isfinite(arr)):
            raise DataError(path, f"expected {FEATURE_DIM} finite values, got shape {arr.shape}",
                            "rerun the features stage")
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
        self.store = open_features(features_dir)
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
        motion = self.store.load(seg.motion_id, FEATURE_VECS)
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
