"""Text-to-motion evaluation of LGTM: test captions, cached generations, evaluator embeddings, metric rows.

The protocol takes its models as objects: an ``Evaluator`` per metric space (``TMREvaluator`` wraps the seven
trained TMRs, ``models.t2m_evaluator`` Guo's evaluator) and a ``MotionGenerator`` (``models.inference.LGTMGenerator``
in the stage, fakes in tests); this module imports no model code.

Normalisation is explicit: generated motions come out of LGTM HumanML3D-normalised (Mean/Std) and are
de-normalised here with Mean/Std; every evaluator gets de-normalised features and applies its own
statistics (TMR: ``part_stats.npz`` of the part, as the encoders were trained; T2M: its meta mean/std).

Replications: replication r uses generated set ``r % generation_seeds`` (one independent generation per
seed) and its own random draws for R-precision batches, Diversity and MultiModality pairs.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from motion.core.errors import DataError
from motion.core.parts import FEATURE_DIM, PART_INDICES, PART_NAMES, TEXT_SLOTS, WHOLE_BODY
from motion.core.sampling import SamplingConfig
from motion.eval.confidence import mean_ci95, welch_test
from motion.eval.metrics import (
    cosine_similarity_score,
    diversity,
    fid,
    matching_score,
    multimodality,
    part_r_precision,
    r_precision,
)

R_BATCH = 32
EVALUATOR_NORMALISATION = ("de-normalised HumanML3D features, then each TMR's part_stats.npz (the T2M evaluator: "
                           "its meta mean/std)")


# ----------------------------------------------------------------------------- test captions

@dataclass(frozen=True)
class TestCaption:
    """One test caption: its motion frames [start, start + length), tokens and six part texts."""

    seg_id: str
    motion_id: str
    caption: str
    tokens: str
    part_texts: tuple[str, ...]
    start: int
    length: int


def read_test_captions(features_dir: str | Path, captions_dir: str | Path, part_annotations: str | Path,
                       window: int, min_frames: int, max_frames: int, max_captions: int, seed: int,
                       split: str = "test") -> list[TestCaption]:
    """Test captions as LGTM reads them (spans in [min_frames, max_frames)), centre-cropped to the model's window;
    a seeded subset of ``max_captions`` when 0 < max_captions < all."""
    from motion.data.captions import read_captions, read_part_annotations
    from motion.datasets import SpanRule, file_captions, read_segments, read_split, segment_texts

    segments = read_segments(features_dir, file_captions(captions_dir, read_split(features_dir, split)),
                             SpanRule("lgtm", min_frames, max_frames))
    if not segments:
        raise DataError(Path(features_dir) / "splits" / f"{split}.txt", f"no {split} caption spans "
                        f"{min_frames}..{max_frames - 1} frames", "check the features stage or lgtm.min_frames")
    if 0 < max_captions < len(segments):
        keep = np.sort(np.random.default_rng(seed).choice(len(segments), max_captions, replace=False))
        segments = [segments[i] for i in keep]
    parts = read_part_annotations(part_annotations, "run `dvc repro split_texts`")
    tokens: dict[str, list[str]] = {}
    out = []
    for s in segments:
        if s.motion_id not in tokens:
            tokens[s.motion_id] = [c.tokens for c in read_captions(Path(captions_dir) / f"{s.motion_id}.txt")]
        span = s.end - s.start
        length = min(span, window)
        out.append(TestCaption(s.seg_id, s.motion_id, s.text, tokens[s.motion_id][int(s.seg_id.rsplit("_", 1)[1])],
                               tuple(segment_texts(s, parts)[1:]),
                               s.start + (span - length) // 2, length))
    return out


def real_motions(features_dir: str | Path, captions: Sequence[TestCaption]) -> list[np.ndarray]:
    """The test motions (length, 263) float32, de-normalised HumanML3D features, one per caption."""
    out = []
    for c in captions:
        path = Path(features_dir) / "new_joint_vecs" / f"{c.motion_id}.npy"
        if not path.is_file():
            raise DataError(path, "feature file is missing", "run `dvc repro features`")
        out.append(np.asarray(np.load(path, mmap_mode="r")[c.start:c.start + c.length], np.float32))
    return out


def condition_texts(captions: Sequence[TestCaption], conditioning: str = "parts") -> list[tuple[str, ...]]:
    """The 7 conditioning texts per caption: caption + part texts, or (ablation "whole_body") the caption 7 times."""
    if conditioning == "parts":
        return [(c.caption,) + c.part_texts for c in captions]
    if conditioning == "whole_body":
        return [(c.caption,) * (1 + len(PART_NAMES)) for c in captions]
    raise ValueError(f"unknown conditioning {conditioning!r}; choose parts or whole_body")


# ----------------------------------------------------------------------------- evaluators

class Evaluator(Protocol):
    """An embedding space for the whole-body metrics (the pipeline's TMR, or Guo's T2M evaluator)."""

    name: str

    def encode_texts(self, texts: Sequence[str], tokens: Sequence[str] | None = None) -> np.ndarray:
        """Text embeddings (N, D)."""
        ...

    def encode_motions(self, motions: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (N, D) of de-normalised HumanML3D features (T, 263) each."""
        ...


def pad_batch(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded (B, L, D) float32 batch and its (B, L) valid mask."""
    longest = max(len(a) for a in arrays)
    out = np.zeros((len(arrays), longest, arrays[0].shape[1]), np.float32)
    mask = np.zeros((len(arrays), longest), bool)
    for i, a in enumerate(arrays):
        out[i, :len(a)], mask[i, :len(a)] = a, True
    return out, mask


class TMREvaluator:
    """The seven trained TMRs: text and motion latents (mu) for the whole body or a part."""

    name = "tmr"

    def __init__(self, models: dict[str, Any], tokens: Callable[[str], np.ndarray],
                 stats: dict[str, tuple[np.ndarray, np.ndarray]], device: str = "cpu", batch_size: int = 128) -> None:
        self.models, self.tokens, self.stats = models, tokens, stats
        self.device, self.batch_size = device, batch_size

    @classmethod
    def from_folders(cls, load: Callable[[Path], Any], tmr_root: str | Path, embeddings_dir: str | Path,
                     part_stats: str | Path, device: str = "cpu",
                     encoders: Sequence[str] = TEXT_SLOTS) -> TMREvaluator:
        """``load(<tmr_root>/<name>)`` (``models.tmr.load_tmr`` on ``device``) for each encoder, the token features
        and the per-part statistics."""
        from motion.datasets import load_part_stats
        from motion.text.embeddings import TextEmbeddings

        models = {n: load(Path(tmr_root) / n) for n in encoders}
        stats = {n: load_part_stats(part_stats, n) for n in encoders}
        return cls(models, TextEmbeddings.load(embeddings_dir).tokens, stats, device)

    def _run(self, encode: Callable[..., Any], arrays: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(arrays), self.batch_size):
                x, mask = pad_batch(arrays[start:start + self.batch_size])
                mu = encode(torch.from_numpy(x).to(self.device), torch.from_numpy(mask).to(self.device))
                out.append(mu.float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def encode_texts(self, texts: Sequence[str], tokens: Sequence[str] | None = None,
                     encoder: str = WHOLE_BODY) -> np.ndarray:
        """Latent means (N, D) of texts under ``encoder``'s text encoder (``tokens`` unused: TMR reads features)."""
        return self._run(self.models[encoder].encode_text, [self.tokens(t) for t in texts])

    def encode_motions(self, motions: Sequence[np.ndarray], encoder: str = WHOLE_BODY) -> np.ndarray:
        """Latent means (N, D) of de-normalised features: the part's dims, normalised with its part_stats."""
        mean, std = self.stats[encoder]
        dims = slice(None) if encoder == WHOLE_BODY else PART_INDICES[encoder]
        return self._run(self.models[encoder].encode_motion,
                         [((np.asarray(m, np.float32)[:, dims] - mean) / std).astype(np.float32) for m in motions])


# ----------------------------------------------------------------------------- generation and its cache

class MotionGenerator(Protocol):
    """Anything that turns 7 texts + a length into de-normalised HumanML3D features (length, 263)."""

    fingerprint: str
    supports_guidance: bool

    def generate(self, texts: Sequence[tuple[str, ...]], lengths: Sequence[int], setting: SamplingConfig,
                 seed: int) -> list[np.ndarray]:
        """One motion per (texts, length), deterministic given the seed."""
        ...


def sample_key(fingerprint: str, setting: SamplingConfig, seed: int, texts: Sequence[tuple[str, ...]],
               lengths: Sequence[int]) -> str:
    """Cache key of one generated set: checkpoint, sampler settings, seed and the exact captions/lengths."""
    captions = hashlib.sha256(json.dumps([list(texts), list(map(int, lengths))]).encode()).hexdigest()
    raw = json.dumps({"model": fingerprint, "setting": asdict(setting), "seed": int(seed), "captions": captions},
                     sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def cached_generate(generator: MotionGenerator, texts: Sequence[tuple[str, ...]], lengths: Sequence[int],
                    setting: SamplingConfig, seed: int, cache_dir: str | Path) -> tuple[list[np.ndarray], bool]:
    """Generated motions from ``<cache_dir>/<key>.npz`` when present, else sampled and stored; (motions, hit)."""
    from motion.core.io import atomic_path

    key = sample_key(generator.fingerprint, setting, seed, texts, lengths)
    path = Path(cache_dir) / f"{setting.sampler}_{setting.steps}_{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            flat, lens = data["features"], data["lengths"]
        if list(lens) == list(map(int, lengths)):
            return np.split(flat, np.cumsum(lens)[:-1]), True
    motions = generator.generate(texts, lengths, setting, seed)
    for m, n in zip(motions, lengths):
        if m.shape != (n, FEATURE_DIM) or not np.isfinite(m).all():
            raise ValueError(f"the generator returned a motion of shape {m.shape} (or NaN) for length {n}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, features=np.concatenate(motions).astype(np.float32), lengths=np.asarray(lengths, np.int64))
    return [m.astype(np.float32) for m in motions], False


# ----------------------------------------------------------------------------- metrics of one row

@dataclass
class RowData:
    """Evaluator embeddings of one row: whole-body motions per generation seed, MM set, part latents per seed."""

    name: str
    motions: list[np.ndarray]                               # [seed] (N, D) in the metric space
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)  # encoder -> [seed] (N, d) TMR latents
    mm: np.ndarray | None = None                            # (texts, repeats, D)
    num_samples: int = 0                                    # generated (or real) motions behind the row


@dataclass(frozen=True)
class MetricSettings:
    """Sizes of the protocol (Guo et al.: batches of 32, 300 Diversity pairs, 10 MultiModality pairs)."""

    replications: int     # metric replications (their own R-precision batches, Diversity and MM pairs)
    diversity_times: int  # Diversity pairs (capped at the number of captions)
    mm_times: int         # MultiModality pairs per text
    seed: int


def replication_values(motion: np.ndarray, real: np.ndarray, texts: np.ndarray, parts: dict[str, np.ndarray],
                       part_texts: dict[str, tuple[np.ndarray, list[str]]], mm: np.ndarray | None,
                       rng: np.random.Generator, settings: MetricSettings) -> dict[str, float]:
    """Every metric of one replication: a generated set's embeddings ``motion`` (N, D) against the real ones
    and the caption embeddings, its part latents ``parts`` (encoder -> (N, d)), the MM set, and ``rng`` for
    the R-precision batches, the Diversity and MultiModality pairs."""
    n = len(texts)
    out = {"fid": fid(real, motion)}
    if n >= R_BATCH:
        for i, v in enumerate(r_precision(texts, motion, rng)):
            out[f"r_precision_top{i + 1}"] = v
    out["mm_dist"] = matching_score(texts, motion)
    out["diversity"] = diversity(motion, rng, min(settings.diversity_times, n))
    if mm is not None:
        out["multimodality"] = multimodality(mm, rng, settings.mm_times)
    for enc, (text_latents, raw_texts) in part_texts.items():
        out[f"{enc}.similarity"] = cosine_similarity_score(parts[enc], text_latents)
        if n >= R_BATCH:
            for i, v in enumerate(part_r_precision(text_latents, parts[enc], raw_texts, rng)):
                out[f"{enc}.r_precision_top{i + 1}"] = v
    return {k: float(v) for k, v in out.items()}


def row_metrics(row: RowData, real: np.ndarray, texts: np.ndarray, part_texts: dict[str, tuple[np.ndarray, list[str]]],
                settings: MetricSettings) -> dict[str, np.ndarray]:
    """Per-replication values (replications,) of every metric of a row (replication r scores set r % sets)."""
    children = np.random.SeedSequence(settings.seed).spawn(settings.replications)
    values: dict[str, list[float]] = {}
    for r, child in enumerate(children):
        k = r % len(row.motions)
        parts = {enc: row.parts[enc][k] for enc in part_texts}
        one = replication_values(row.motions[k], real, texts, parts, part_texts, row.mm,
                                 np.random.default_rng(child), settings)
        for name, value in one.items():
            values.setdefault(name, []).append(value)
    return {k: np.asarray(v) for k, v in values.items()}


def summarise(values: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """{metric: {mean, ci95}} of per-replication values."""
    return {k: dict(zip(("mean", "ci95"), mean_ci95(v))) for k, v in sorted(values.items())}


def compare_rows(a: dict[str, np.ndarray], b: dict[str, np.ndarray], alpha: float = 0.05) -> dict[str, dict]:
    """Welch's test of a - b for every metric the two rows share (needs >= 2 replications).

    Metrics constant over the replications of both rows (FID, MM-Dist, similarities when each row has one
    generated set; R-precision with a single batch) get ``{"testable": False}``: their CI is zero only because
    nothing was redrawn.
    """
    out: dict[str, dict] = {}
    for k in sorted(set(a) & set(b)):
        if len(a[k]) < 2 or len(b[k]) < 2:
            continue
        if np.ptp(a[k]) == 0.0 and np.ptp(b[k]) == 0.0:
            out[k] = {"testable": False, "difference": float(a[k][0] - b[k][0])}
        else:
            out[k] = {"testable": True, **welch_test(a[k], b[k], alpha).to_dict()}
    return out


@dataclass(frozen=True)
class EvaluationRow:
    """One generated row: how it samples, which texts condition it (parts | whole_body), whether it has an MM set."""

    name: str
    sampling: SamplingConfig
    conditioning: str
    multimodality: bool
    config: dict[str, Any]  # the row as written in params.yaml (shown in the report)


@dataclass(frozen=True)
class EvaluationSettings:
    """The protocol of one evaluation: metric sizes and seed, generated sets per row, the MM set, rows, tests."""

    metrics: MetricSettings
    generation_seeds: int            # independent generated sets per row (replication r uses set r % n)
    mm_texts: int                    # MultiModality: texts x repeats generations
    mm_repeats: int
    rows: tuple[EvaluationRow, ...]
    compare: tuple[tuple[str, str], ...]  # row pairs for Welch's tests


REAL = "real"


def embed_row(name: str, motions_per_seed: list[list[np.ndarray]], spaces: dict[str, Evaluator],
              tmr: TMREvaluator, mm: list[np.ndarray] | None, mm_shape: tuple[int, int]) -> dict[str, RowData]:
    """Evaluator embeddings of one row in every metric space (part latents with the TMRs, in the TMR space)."""
    out = {}
    for space, ev in spaces.items():
        data = RowData(name, [ev.encode_motions(m) for m in motions_per_seed],
                       num_samples=sum(len(m) for m in motions_per_seed) + (len(mm) if mm else 0))
        if mm:
            data.mm = ev.encode_motions(mm).reshape(*mm_shape, -1)
        if space == "tmr":
            data.parts = {e: [tmr.encode_motions(m, e) for m in motions_per_seed] for e in TEXT_SLOTS}
        out[space] = data
    return out


def protocol_notes(n: int, settings: EvaluationSettings) -> list[str]:
    """What the report must say when the test set is too small for a part of the protocol."""
    notes = []
    m = settings.metrics
    if n < m.diversity_times:
        notes.append(f"Diversity uses {n} pairs (the protocol's {m.diversity_times} need that many "
                     f"test captions; {n} were evaluated).")
    if n < R_BATCH:
        notes.append(f"R-precision needs batches of 32 pairs; only {n} captions, so it is not reported.")
    return notes


def text_embeddings(captions: Sequence[TestCaption], spaces: dict[str, Evaluator],
                    tmr: TMREvaluator) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, list[str]]]]:
    """Caption embeddings per metric space, and per TMR slot the latents and raw texts of the part metrics."""
    texts = [c.caption for c in captions]
    tokens = [c.tokens for c in captions]
    text_emb = {s: ev.encode_texts(texts, tokens) for s, ev in spaces.items()}
    part_texts = {WHOLE_BODY: (text_emb["tmr"], texts)}
    for k, part in enumerate(TEXT_SLOTS[1:]):
        raw = [c.part_texts[k] for c in captions]
        part_texts[part] = (tmr.encode_texts(raw, encoder=part), raw)
    return text_emb, part_texts


@dataclass
class Generated:
    """A row's generated sets (one per generation seed), its MultiModality set, and the cache hits behind them."""

    per_seed: list[list[np.ndarray]]
    mm: list[np.ndarray] | None
    hits: int
    misses: int


def generate_row(row: EvaluationRow, generator: MotionGenerator, captions: Sequence[TestCaption], seeds: list[int],
                 mm_idx: np.ndarray, mm_repeats: int, mm_seed: int, cache_dir: str | Path) -> Generated:
    """Every generated set of one row (cached): one per seed, plus the MM set when the row has one."""
    cond = condition_texts(captions, row.conditioning)
    lengths = [c.length for c in captions]
    out = Generated([], None, 0, 0)
    for s in seeds:
        motions, hit = cached_generate(generator, cond, lengths, row.sampling, s, cache_dir)
        out.per_seed.append(motions)
        out.hits, out.misses = out.hits + hit, out.misses + (not hit)
    if row.multimodality:
        mm_cond = [cond[i] for i in mm_idx for _ in range(mm_repeats)]
        mm_len = [lengths[i] for i in mm_idx for _ in range(mm_repeats)]
        out.mm, hit = cached_generate(generator, mm_cond, mm_len, row.sampling, mm_seed, cache_dir)
        out.hits, out.misses = out.hits + hit, out.misses + (not hit)
    return out


def evaluate(settings: EvaluationSettings, captions: Sequence[TestCaption], real: list[np.ndarray],
             tmr: TMREvaluator, generator: MotionGenerator | None, window: int, cache_dir: str | Path,
             t2m: Evaluator | None = None) -> dict[str, Any]:
    """Evaluate Real and every row; returns results (summaries, per-replication values, comparisons, counts, notes).

    Generated sets are cached in ``cache_dir`` (``cached_generate``), so a rerun only recomputes metrics.
    """
    n, seed, m = len(captions), settings.metrics.seed, settings.metrics
    notes = protocol_notes(n, settings)
    # Guo's T2M evaluator, when given, is the primary space (the paper's table; first in every results table);
    # TMR keeps the part-level metrics
    spaces: dict[str, Evaluator] = {"tmr": tmr} if t2m is None else {"t2m": t2m, "tmr": tmr}
    text_emb, part_texts = text_embeddings(captions, spaces, tmr)
    rows = {REAL: embed_row(REAL, [real], spaces, tmr, None, (0, 0))}
    rows[REAL]["tmr"].num_samples = n
    seeds = [seed + s for s in range(settings.generation_seeds)]
    if m.replications > len(seeds):
        notes.append(f"{len(seeds)} generated set(s) per row for {m.replications} replications: the "
                     "CIs of FID, MM-Dist and similarities (deterministic given a set) reflect "
                     + ("only one generation" if len(seeds) == 1 else f"{len(seeds)} generations") + ".")
    mm_idx = np.sort(np.random.default_rng([seed, 7]).choice(n, min(settings.mm_texts, n), replace=False))
    hits = misses = 0
    for row in settings.rows:
        if generator is None:
            raise ValueError("no trained LGTM to evaluate: run train_lgtm")
        if row.sampling.guidance_scale != 1.0 and not generator.supports_guidance:
            notes.append(f"Row {row.name} skipped: guidance_scale {row.sampling.guidance_scale} needs a model trained "
                         "with lgtm cond_drop_prob > 0 (this one has no unconditional branch).")
            continue
        gen = generate_row(row, generator, captions, seeds, mm_idx, settings.mm_repeats, seed + 100_000, cache_dir)
        hits, misses = hits + gen.hits, misses + gen.misses
        rows[row.name] = embed_row(row.name, gen.per_seed, spaces, tmr, gen.mm, (len(mm_idx), settings.mm_repeats))
    values = {space: {r: row_metrics(rows[r][space], rows[REAL][space].motions[0], text_emb[space],
                                     part_texts if space == "tmr" else {}, m) for r in rows}
              for space in spaces}
    pairs = [tuple(p) for p in settings.compare if all(x in rows for x in p)]
    configured = {row.name: dict(row.config) for row in settings.rows}
    return {
        "summary": {s: {r: summarise(v) for r, v in rows_v.items()} for s, rows_v in values.items()},
        "values": {s: {r: {k: v.tolist() for k, v in rv.items()} for r, rv in rows_v.items()}
                   for s, rows_v in values.items()},
        "comparisons": {s: {f"{a} vs {b}": compare_rows(values[s][a], values[s][b]) for a, b in pairs}
                        for s in spaces},
        "counts": {"captions": n, "replications": m.replications, "generation_seeds": len(seeds),
                   "diversity_pairs": min(m.diversity_times, n),
                   "multimodality": f"{len(mm_idx)} texts x {settings.mm_repeats} motions, {m.mm_times} pairs each",
                   "motions": {r: rows[r]["tmr"].num_samples for r in rows}},
        "cache": {"hits": hits, "misses": misses},  # how this run got its samples: not an output (cache state)
        "rows": {r: configured.get(r, {"real": True}) for r in rows},
        "notes": notes,
        "settings": {**asdict(m), "window": window, "evaluator_normalisation": EVALUATOR_NORMALISATION},
    }
