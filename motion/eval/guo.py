"""Guo et al.'s evaluation protocol (CVPR 2022, the HumanML3D benchmark), exactly: ``evaluate.protocol: guo``.

What differs from the caption-level protocol of ``motion.eval.evaluation`` (``protocol: lgtm``):
- **Items are motions, not captions.** A test motion of ``max_frames`` (200) frames or more, or fewer than
  ``min_frames``, is dropped with all its captions *before* sub-captions are cut; a timed sub-caption
  becomes an item of its own (its span, kept when its length is in [min_frames, max_frames)); the captions
  of the whole motion share one item.
- **Each replication draws afresh**: one caption per item at random; the length min(span, window) rounded
  down to a multiple of ``unit_length`` (4), one unit shorter with probability 1/3 (Guo's "double" coin);
  a random crop of that length. As Guo's motion loaders do, FID's real statistics come from one such draw
  and every row (Real included) from its own draw, so Real's FID is not zero by construction.
- **Each replication generates its own set** (seed ``seed + r``; cached like every set), with its own
  R-precision batches, Diversity and MultiModality draws; the MultiModality set (``mm_texts`` items x
  ``mm_repeats``) is regenerated per replication too.
- CI = 1.96 std / sqrt(replications) (``motion.eval.confidence.mean_ci95``), 20 replications in the paper.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from motion.core.errors import DataError
from motion.core.parts import TEXT_SLOTS
from motion.eval.evaluation import (
    EVALUATOR_NORMALISATION,
    REAL,
    EvaluationSettings,
    Evaluator,
    MotionGenerator,
    TestCaption,
    TMREvaluator,
    cached_generate,
    compare_rows,
    condition_texts,
    protocol_notes,
    real_motions,
    replication_values,
    summarise,
    text_embeddings,
)

UNIT_LENGTH = 4  # Guo's unit_length: motion lengths are multiples of 4 frames


@dataclass(frozen=True)
class GuoCaption:
    """One caption of an item: its id, text, tokens and six part texts."""

    seg_id: str
    caption: str
    tokens: str
    part_texts: tuple[str, ...]


@dataclass(frozen=True)
class GuoItem:
    """One evaluation item: a motion span [start, end) and the captions that describe it."""

    motion_id: str
    start: int
    end: int
    captions: tuple[GuoCaption, ...]


def group_items(captions: Sequence[TestCaption], motion_frames: dict[str, int], min_frames: int,
                max_frames: int) -> list[GuoItem]:
    """Guo's items from caption spans (``TestCaption`` with its full span: start, length): drop whole motions
    outside [min_frames, max_frames) first, then group the captions of one span into one item."""
    groups: dict[tuple[str, int, int], list[GuoCaption]] = {}
    for c in captions:
        total = motion_frames[c.motion_id]
        if not min_frames <= total < max_frames:
            continue  # Guo: the whole motion goes, sub-captions included
        if not min_frames <= c.length < max_frames:
            continue
        key = (c.motion_id, c.start, c.start + c.length)
        groups.setdefault(key, []).append(GuoCaption(c.seg_id, c.caption, c.tokens, c.part_texts))
    return [GuoItem(m, s, e, tuple(caps)) for (m, s, e), caps in sorted(groups.items())]


def crop_length(span: int, window: int, rng: np.random.Generator, unit: int = UNIT_LENGTH) -> int:
    """Guo's length: min(span, window) rounded down to a multiple of ``unit``, one unit less with p = 1/3."""
    length = min(span, window)
    coin = rng.choice(["single", "single", "double"])
    units = length // unit - (1 if coin == "double" else 0)
    return max(units, 1) * unit


def draw_replication(items: Sequence[GuoItem], window: int, rng: np.random.Generator,
                     unit: int = UNIT_LENGTH) -> list[TestCaption]:
    """One replication's test set: per item a random caption, a rounded length and a random crop."""
    out = []
    for item in items:
        caption = item.captions[int(rng.integers(len(item.captions)))]
        span = item.end - item.start
        length = min(crop_length(span, window, rng, unit), span)
        start = item.start + int(rng.integers(0, span - length + 1))
        out.append(TestCaption(caption.seg_id, item.motion_id, caption.caption, caption.tokens, caption.part_texts,
                               start, length))
    return out


def read_items(features_dir: str | Path, captions_dir: str | Path, part_annotations: str | Path,
               min_frames: int, max_frames: int, split: str = "test") -> list[GuoItem]:
    """Guo's items of ``split`` from the features, the captions and the part texts."""
    from motion.eval.evaluation import read_test_captions

    spans = read_test_captions(features_dir, captions_dir, part_annotations, window=10 ** 9,
                               min_frames=min_frames, max_frames=max_frames, max_captions=0, seed=0, split=split)
    frames = {c.motion_id: int(np.load(Path(features_dir) / "new_joint_vecs" / f"{c.motion_id}.npy",
                                       mmap_mode="r").shape[0]) for c in spans}
    items = group_items(spans, frames, min_frames, max_frames)
    if not items:
        raise DataError(Path(features_dir) / "splits" / f"{split}.txt",
                        f"no {split} motion of {min_frames}..{max_frames - 1} frames (Guo's protocol)",
                        "check the features stage or captions.min_frames / max_frames")
    return items


def evaluate_guo(settings: EvaluationSettings, items: Sequence[GuoItem], features_dir: str | Path,
                 tmr: TMREvaluator, generator: MotionGenerator, window: int, cache_dir: str | Path,
                 t2m: Evaluator | None = None) -> dict[str, Any]:
    """Real and every row under Guo's protocol; the same result layout as ``motion.eval.evaluation.evaluate``."""
    m, seed = settings.metrics, settings.metrics.seed
    spaces: dict[str, Evaluator] = {"tmr": tmr} if t2m is None else {"t2m": t2m, "tmr": tmr}
    rows = [row for row in settings.rows
            if row.sampling.guidance_scale == 1.0 or generator.supports_guidance]
    notes = protocol_notes(len(items), settings)
    notes += [f"Row {row.name} skipped: guidance_scale {row.sampling.guidance_scale} needs a model trained with "
              "lgtm cond_drop_prob > 0." for row in settings.rows if row not in rows]
    values: dict[str, dict[str, dict[str, list[float]]]] = {s: {} for s in spaces}
    motions: dict[str, int] = {}
    hits = misses = 0

    def put(space: str, row: str, one: dict[str, float]) -> None:
        for name, value in one.items():
            values[space].setdefault(row, {}).setdefault(name, []).append(value)

    for r, child in enumerate(np.random.SeedSequence([seed, 20]).spawn(m.replications)):
        rng = np.random.default_rng(child)
        reference = real_motions(features_dir, draw_replication(items, window, rng))  # FID's real statistics
        reference_emb = {space: ev.encode_motions(reference) for space, ev in spaces.items()}
        for k, name in enumerate([REAL] + [row.name for row in rows]):
            captions = draw_replication(items, window, rng)  # every row (Real too) draws its own captions and crops
            lengths = [c.length for c in captions]
            text_emb, part_texts = text_embeddings(captions, spaces, tmr)
            mm = None
            if name == REAL:
                motion_set = real_motions(features_dir, captions)
            else:
                row = rows[k - 1]
                cond = condition_texts(captions, row.conditioning)
                motion_set, hit = cached_generate(generator, cond, lengths, row.sampling, seed + r, cache_dir)
                hits, misses = hits + hit, misses + (not hit)
                if row.multimodality:
                    mm_idx = np.sort(rng.choice(len(captions), min(settings.mm_texts, len(captions)), replace=False))
                    mm_cond = [cond[i] for i in mm_idx for _ in range(settings.mm_repeats)]
                    mm_len = [lengths[i] for i in mm_idx for _ in range(settings.mm_repeats)]
                    mm, hit = cached_generate(generator, mm_cond, mm_len, row.sampling, seed + 100_000 + r, cache_dir)
                    hits, misses = hits + hit, misses + (not hit)
            motions[name] = motions.get(name, 0) + len(motion_set) + (len(mm) if mm else 0)
            parts = {enc: tmr.encode_motions(motion_set, enc) for enc in TEXT_SLOTS}
            for space, ev in spaces.items():
                emb = ev.encode_motions(motion_set)
                mm_emb = ev.encode_motions(mm).reshape(-1, settings.mm_repeats, emb.shape[1]) if mm else None
                put(space, name, replication_values(emb, reference_emb[space], text_emb[space],
                                                    parts if space == "tmr" else {},
                                                    part_texts if space == "tmr" else {}, mm_emb,
                                                    np.random.default_rng([seed, r, k]), m))
    arrays = {s: {r: {k: np.asarray(v) for k, v in rv.items()} for r, rv in sv.items()} for s, sv in values.items()}
    names = [REAL] + [row.name for row in rows]
    pairs = [tuple(p) for p in settings.compare if all(x in names for x in p)]
    return {
        "protocol": "guo",
        "summary": {s: {r: summarise(v) for r, v in rv.items()} for s, rv in arrays.items()},
        "values": {s: {r: {k: v.tolist() for k, v in rv.items()} for r, rv in sv.items()} for s, sv in arrays.items()},
        "comparisons": {s: {f"{a} vs {b}": compare_rows(arrays[s][a], arrays[s][b]) for a, b in pairs}
                        for s in spaces},
        "counts": {"captions": len(items), "items": len(items), "replications": m.replications,
                   "generation_seeds": m.replications, "diversity_pairs": min(m.diversity_times, len(items)),
                   "multimodality": f"{min(settings.mm_texts, len(items))} items x {settings.mm_repeats} motions, "
                                    f"{m.mm_times} pairs each, regenerated per replication",
                   "motions": motions},
        "cache": {"hits": hits, "misses": misses},
        "rows": {REAL: {"real": True}, **{row.name: dict(row.config) for row in rows}},
        "notes": notes,
        "settings": {**asdict(m), "window": window, "protocol": "guo", "unit_length": UNIT_LENGTH,
                     "evaluator_normalisation": EVALUATOR_NORMALISATION},
    }

