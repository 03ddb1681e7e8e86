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
from dataclasses import asdict, dataclass
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
    moving: tuple[str, ...] = ()  # the parts its split names as moving (non-idle): part energy of single-part ones


def read_test_captions(features_dir: str | Path, caption_table: str | Path, part_annotations: str | Path,
                       window: int, min_frames: int, max_frames: int, max_captions: int, seed: int,
                       split: str = "test") -> list[TestCaption]:
    """Test captions as LGTM reads them (spans in [min_frames, max_frames)), centre-cropped to the model's window;
    a seeded subset of ``max_captions`` when 0 < max_captions < all."""
    from motion.data.captions import read_caption_table, read_part_annotations
    from motion.datasets import SpanRule, clip_captions, read_segments, read_split, segment_texts
    from motion.text.schema import active_parts

    table = read_caption_table(caption_table)
    segments = read_segments(features_dir, clip_captions(table, read_split(features_dir, split), caption_table),
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
            tokens[s.motion_id] = [c.tokens for c in table[s.motion_id]]
        span = s.end - s.start
        length = min(span, window)
        out.append(TestCaption(s.seg_id, s.motion_id, s.text, tokens[s.motion_id][int(s.seg_id.rsplit("_", 1)[1])],
                               tuple(segment_texts(s, parts)[1:]),
                               s.start + (span - length) // 2, length,
                               tuple(sorted(active_parts(parts.get(s.seg_id, {}))))))
    return out


def real_motions(features_dir: str | Path, captions: Sequence[TestCaption]) -> list[np.ndarray]:
    """The test motions (length, 263) float32, de-normalised HumanML3D features, one per caption."""
    from motion.data.clipstore import FEATURE_VECS, open_features

    store = open_features(features_dir)
    return [np.asarray(store.load(c.motion_id, FEATURE_VECS)[c.start:c.start + c.length], np.float32)
            for c in captions]


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


@dataclass(frozen=True)
class Sampled:
    """A generated set, whether it came from the cache, and the wall time of the sampling that made it."""

    motions: list[np.ndarray]
    hit: bool
    seconds: float  # stored with the cached set, so a rerun from the cache reports the same figure


def cached_generate(generator: MotionGenerator, texts: Sequence[tuple[str, ...]], lengths: Sequence[int],
                    setting: SamplingConfig, seed: int, cache_dir: str | Path) -> Sampled:
    """Generated motions from ``<cache_dir>/<key>.npz`` when present, else sampled (timed) and stored."""
    import time

    from motion.core.io import atomic_path

    if not texts:
        return Sampled([], True, 0.0)
    path = sample_path(cache_dir, generator, texts, lengths, setting, seed)
    if path.is_file():
        with np.load(path) as data:
            flat, lens = data["features"], data["lengths"]
            seconds = float(data["seconds"]) if "seconds" in data.files else float("nan")
        if list(lens) == list(map(int, lengths)):
            return Sampled(np.split(flat, np.cumsum(lens)[:-1]), True, seconds)
    start = time.perf_counter()
    motions = generator.generate(texts, lengths, setting, seed)
    seconds = time.perf_counter() - start
    for m, n in zip(motions, lengths):
        if m.shape != (n, FEATURE_DIM) or not np.isfinite(m).all():
            raise ValueError(f"the generator returned a motion of shape {m.shape} (or NaN) for length {n}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, features=np.concatenate(motions).astype(np.float32), lengths=np.asarray(lengths, np.int64),
                     seconds=np.float64(seconds))
    return Sampled([m.astype(np.float32) for m in motions], False, seconds)


def sample_path(cache_dir: str | Path, generator: MotionGenerator, texts: Sequence[tuple[str, ...]],
                lengths: Sequence[int], setting: SamplingConfig, seed: int) -> Path:
    """Where ``cached_generate`` keeps this set."""
    key = sample_key(generator.fingerprint, setting, seed, texts, lengths)
    return Path(cache_dir) / f"{setting.sampler}_{setting.steps}_{key}.npz"


# ----------------------------------------------------------------------------- planning the generations

@dataclass(frozen=True)
class Request:
    """One generated set an evaluation asks for: the run, its conditioning texts and lengths, sampler, seed."""

    run: str
    texts: tuple[tuple[str, ...], ...]
    lengths: tuple[int, ...]
    setting: SamplingConfig
    seed: int

    @property
    def cost(self) -> int:
        """Frames x denoising steps: what the sampling of this set costs, up to a constant."""
        return sum(self.lengths) * self.setting.steps


class PlanningGenerator:
    """Stands in for a run's generator in a planning pass: records each request and returns random motions.

    An evaluation's draws (captions, crops, MultiModality items) never depend on the generated motions, so a
    pass with these stand-ins asks for exactly the sets the real pass will: they can then be generated in
    parallel into the cache (``share_requests``), and the real pass reads them all from there."""

    def __init__(self, run: str, generator: MotionGenerator, requests: list[Request]) -> None:
        self.run, self.requests = run, requests
        self.fingerprint, self.supports_guidance = generator.fingerprint, generator.supports_guidance

    def generate(self, texts: Sequence[tuple[str, ...]], lengths: Sequence[int], setting: SamplingConfig,
                 seed: int) -> list[np.ndarray]:
        """Record the request; random features of the right shapes (the planning pass's scores are discarded)."""
        self.requests.append(Request(self.run, tuple(map(tuple, texts)), tuple(map(int, lengths)), setting, int(seed)))
        rng = np.random.default_rng([int(seed), len(self.requests)])
        return [rng.standard_normal((n, FEATURE_DIM)).astype(np.float32) for n in lengths]


class PlanningEvaluator:
    """A stand-in metric space for a planning pass: random 8-d embeddings, so the pass costs next to nothing.
    Which sets an evaluation asks for depends on its draws only, never on its metric spaces."""

    name = "planning"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def encode_texts(self, texts: Sequence[str], tokens: Sequence[str] | None = None) -> np.ndarray:
        """Random (N, 8) text embeddings."""
        return self.rng.standard_normal((len(texts), 8))

    def encode_motions(self, motions: Sequence[np.ndarray]) -> np.ndarray:
        """Random (N, 8) motion embeddings."""
        return self.rng.standard_normal((len(motions), 8))


def share_requests(requests: Sequence[Request], workers: int) -> list[list[Request]]:
    """Split the requests over ``workers`` with about equal cost (largest first, each to the least loaded);
    duplicates are dropped and the split is deterministic."""
    unique = list(dict.fromkeys(requests))
    shares: list[list[Request]] = [[] for _ in range(max(1, workers))]
    loads = [0] * len(shares)
    for request in sorted(unique, key=lambda q: -q.cost):
        k = loads.index(min(loads))
        shares[k].append(request)
        loads[k] += request.cost
    return [share for share in shares if share]


# ----------------------------------------------------------------------------- metric spaces and embedded sets

def tmr_spaces(spaces: dict[str, Evaluator]) -> list[str]:
    """The spaces with part encoders (TMRs): they get the part-level metrics."""
    return [name for name, ev in spaces.items() if isinstance(ev, TMREvaluator)]


@dataclass
class SpaceTexts:
    """Caption embeddings per metric space, and per TMR space and encoder the part-text latents and raw texts."""

    whole: dict[str, np.ndarray]
    parts: dict[str, dict[str, tuple[np.ndarray, list[str]]]]


def text_embeddings(captions: Sequence[TestCaption], spaces: dict[str, Evaluator]) -> SpaceTexts:
    """Embeddings of the captions in every space; in TMR spaces also of the six part texts (part metrics)."""
    texts = [c.caption for c in captions]
    tokens = [c.tokens for c in captions]
    whole = {s: ev.encode_texts(texts, tokens) for s, ev in spaces.items()}
    parts: dict[str, dict[str, tuple[np.ndarray, list[str]]]] = {}
    for space in tmr_spaces(spaces):
        ev = spaces[space]
        parts[space] = {WHOLE_BODY: (whole[space], texts)}
        for k, part in enumerate(TEXT_SLOTS[1:]):
            if part in ev.models:  # an evaluator may hold only some part encoders
                raw = [c.part_texts[k] for c in captions]
                parts[space][part] = (ev.encode_texts(raw, encoder=part), raw)
    return SpaceTexts(whole, parts)


def part_energy_shares(features: np.ndarray) -> np.ndarray:
    """(6,) share of each part (PART_NAMES order) in a motion's energy: the mean squared frame-to-frame speed of
    its joints' root-relative positions (the ric features, in the root's facing frame), summed over the part's
    joints; the root (torso) contributes through its ric joints only."""
    from motion.core.parts import PART_JOINTS, RIC

    ric = np.asarray(features, np.float64)[:, RIC].reshape(len(features), 21, 3)  # joints 1..21
    if len(ric) < 2:
        return np.full(len(PART_NAMES), 1.0 / len(PART_NAMES))
    speed2 = (np.diff(ric, axis=0) ** 2).sum(-1).mean(0)
    energy = np.array([speed2[[j - 1 for j in PART_JOINTS[p] if j > 0]].sum() for p in PART_NAMES])
    total = energy.sum()
    return energy / total if total > 0 else np.full(len(PART_NAMES), 1.0 / len(PART_NAMES))


def named_part_energy(motions: Sequence[np.ndarray], captions: Sequence[TestCaption]) -> float | None:
    """Mean share of motion energy in the named part over the single-part captions (those whose split names
    exactly one moving part); None when there are none. Text-free: it needs no evaluator."""
    shares = [part_energy_shares(m)[PART_NAMES.index(c.moving[0])]
              for m, c in zip(motions, captions) if len(c.moving) == 1]
    return float(np.mean(shares)) if shares else None


@dataclass
class EmbeddedSet:
    """One generated (or real) set in every metric space: whole-body latents, part latents (TMR spaces), the
    MultiModality set, and the named-part energy of its single-part captions."""

    whole: dict[str, np.ndarray]
    parts: dict[str, dict[str, np.ndarray]]
    mm: dict[str, np.ndarray] | None
    energy: float | None
    count: int  # motions behind it (the MM set included)


def embed_set(spaces: dict[str, Evaluator], motions: list[np.ndarray], captions: Sequence[TestCaption],
              mm: list[np.ndarray] | None = None, mm_repeats: int = 1) -> EmbeddedSet:
    """Embed a set (de-normalised features per caption) and its MM set in every space."""
    whole = {s: ev.encode_motions(motions) for s, ev in spaces.items()}
    parts = {s: {e: spaces[s].encode_motions(motions, e) for e in TEXT_SLOTS if e in spaces[s].models}
             for s in tmr_spaces(spaces)}
    mm_emb = None
    if mm:
        mm_emb = {s: ev.encode_motions(mm).reshape(-1, mm_repeats, whole[s].shape[1]) for s, ev in spaces.items()}
    return EmbeddedSet(whole, parts, mm_emb, named_part_energy(motions, captions),
                       len(motions) + (len(mm) if mm else 0))


# ----------------------------------------------------------------------------- metrics of one set

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
    """Every metric of one replication in one space: a set's embeddings ``motion`` (N, D) against the real ones
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


NAMED_PART_ENERGY = "named_part_energy"


def score_set(emb: EmbeddedSet, reference: dict[str, np.ndarray], texts: SpaceTexts, seed: Any,
              settings: MetricSettings) -> dict[str, dict[str, float]]:
    """Every metric of one set in every space (the same R-precision/Diversity/MM draws in each, from ``seed``);
    the text-free named-part energy goes with the first (primary) space."""
    out = {}
    for k, space in enumerate(emb.whole):
        one = replication_values(emb.whole[space], reference[space], texts.whole[space], emb.parts.get(space, {}),
                                 texts.parts.get(space, {}), None if emb.mm is None else emb.mm[space],
                                 np.random.default_rng(seed), settings)
        if k == 0 and emb.energy is not None:
            one[NAMED_PART_ENERGY] = emb.energy
        out[space] = one
    return out


def summarise(values: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """{metric: {mean, ci95}} of per-unit values (units: training runs x replications)."""
    return {k: dict(zip(("mean", "ci95"), mean_ci95(v))) for k, v in sorted(values.items())}


def compare_rows(a: dict[str, np.ndarray], b: dict[str, np.ndarray], alpha: float = 0.05) -> dict[str, dict]:
    """Welch's test of a - b for every metric the two rows share (needs >= 2 units each).

    Metrics constant over the units of both rows (a deterministic metric of a single generated set) get
    ``{"testable": False}``: their CI is zero only because nothing was redrawn.
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


TESTED_METRICS = ("r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "mm_dist", "diversity",
                  "multimodality", NAMED_PART_ENERGY)


def compare_table(values: dict[str, dict[str, np.ndarray]], pairs: Sequence[tuple[str, str]],
                  alpha: float = 0.05) -> dict[str, dict[str, dict]]:
    """Welch's tests of every pair on the table's metrics (``TESTED_METRICS``), Holm-corrected across all of
    them: each test gets ``p_holm`` and ``significant`` at family-wise level ``alpha``."""
    from motion.study.statistics import holm

    out = {f"{a} vs {b}": {m: t for m, t in compare_rows(values[a], values[b], alpha).items() if m in TESTED_METRICS}
           for a, b in pairs}
    tested = [(pair, m) for pair, tests in out.items() for m, t in tests.items() if t.get("testable")]
    for (pair, m), p_holm in zip(tested, holm([out[pair][m]["p_value"] for pair, m in tested])):
        out[pair][m]["p_holm"] = p_holm
        out[pair][m]["significant"] = bool(p_holm < alpha)
    return out


# ----------------------------------------------------------------------------- rows and the protocol

@dataclass(frozen=True)
class EvaluationRow:
    """One generated row: how it samples, which texts condition it (parts | whole_body), whether it has an MM set,
    and the training runs behind it (a trained variant's seeds: its values pool runs x replications)."""

    name: str
    sampling: SamplingConfig
    conditioning: str
    multimodality: bool
    config: dict[str, Any]  # the row as written in params.yaml (shown in the report)
    runs: tuple[str, ...] = ("lgtm",)  # keys of the generators (training runs) that generate it
    kind: str = "sampler"              # variant (a trained variant at the default sampler) | sampler (a setting)


@dataclass(frozen=True)
class EvaluationSettings:
    """The protocol of one evaluation: metric sizes and seed, generated sets per row, the MM set, rows, tests."""

    metrics: MetricSettings
    generation_seeds: int            # independent generated sets per row and run (replication r uses set r % n)
    mm_texts: int                    # MultiModality: texts x repeats generations
    mm_repeats: int
    rows: tuple[EvaluationRow, ...]
    compare: tuple[tuple[str, str], ...]  # row pairs for Welch's tests (Holm-corrected across the table)


REAL = "real"


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


def usable_rows(settings: EvaluationSettings, generators: dict[str, MotionGenerator]) -> tuple[list[EvaluationRow],
                                                                                               list[str]]:
    """The rows every generator of which exists and supports the row's guidance, and a note per skipped row."""
    rows, notes = [], []
    for row in settings.rows:
        missing = [r for r in row.runs if r not in generators]
        if missing:
            notes.append(f"Row {row.name} skipped: no model for run(s) {', '.join(missing)}.")
        elif row.sampling.guidance_scale != 1.0 and not all(generators[r].supports_guidance for r in row.runs):
            notes.append(f"Row {row.name} skipped: guidance_scale {row.sampling.guidance_scale} needs a model trained "
                         "with lgtm cond_drop_prob > 0 (this one has no unconditional branch).")
        else:
            rows.append(row)
    return rows, notes


class Table:
    """Per-unit metric values of every row in every space, the units behind them and what generated them."""

    def __init__(self, spaces: Sequence[str]) -> None:
        self.values: dict[str, dict[str, dict[str, list[float]]]] = {s: {} for s in spaces}
        self.value_units: dict[str, dict[str, dict[str, list[str]]]] = {s: {} for s in spaces}  # unit of each value
        self.units: dict[str, list[str]] = {}
        self.motions: dict[str, int] = {}
        self.seconds: dict[str, list[float]] = {}
        self.samples: dict[str, int] = {}
        self.hits = self.misses = 0

    def put(self, row: str, unit: str, scored: dict[str, dict[str, float]], motions: int) -> None:
        """Add one unit's values (space -> metric -> value)."""
        for space, one in scored.items():
            for name, value in one.items():  # a metric may be missing in a unit (no single-part caption drawn)
                self.values[space].setdefault(row, {}).setdefault(name, []).append(value)
                self.value_units[space].setdefault(row, {}).setdefault(name, []).append(unit)
        self.units.setdefault(row, []).append(unit)
        self.motions[row] = self.motions.get(row, 0) + motions

    def sampled(self, row: str, got: Sampled, count: int) -> None:
        """Record a generated set's cache state and wall time (``count`` motions)."""
        self.hits, self.misses = self.hits + got.hit, self.misses + (not got.hit)
        self.seconds.setdefault(row, []).append(got.seconds)
        self.samples[row] = self.samples.get(row, 0) + count

    def arrays(self) -> dict[str, dict[str, dict[str, np.ndarray]]]:
        return {s: {r: {k: np.asarray(v) for k, v in rv.items()} for r, rv in sv.items()}
                for s, sv in self.values.items()}

    def per_run(self) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """space -> row -> run -> metric -> mean over that run's replications (the training-seed spread)."""
        out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for space, rows in self.values.items():
            for row, metrics in rows.items():
                for run in dict.fromkeys(u.split("/", 1)[0] for u in self.units[row]):
                    means = {}
                    for k, values in sorted(metrics.items()):
                        mine = [v for v, u in zip(values, self.value_units[space][row][k]) if u.split("/", 1)[0] == run]
                        if mine:
                            means[k] = float(np.mean(mine))
                    out.setdefault(space, {}).setdefault(row, {})[run] = means
        return out

    def timing(self) -> dict[str, dict[str, float]]:
        """Wall time per generated motion of each row (from the sampling runs, stored with the cached sets)."""
        return {r: {"seconds_per_motion": float(np.nansum(s) / max(self.samples[r], 1)),
                    "motions": self.samples[r]} for r, s in self.seconds.items()}


def results_of(table: Table, settings: EvaluationSettings, rows: Sequence[EvaluationRow], counts: dict[str, Any],
               notes: list[str], extra_settings: dict[str, Any]) -> dict[str, Any]:
    """The results layout both protocols share (summaries, per-unit values, Holm-corrected tests, counts)."""
    arrays = table.arrays()
    names = [REAL] + [row.name for row in rows]
    pairs = [tuple(p) for p in settings.compare if all(x in names for x in p)]
    return {
        "summary": {s: {r: summarise(arrays[s][r]) for r in names if r in arrays[s]} for s in arrays},
        "values": {s: {r: {k: v.tolist() for k, v in rv.items()} for r, rv in sv.items()} for s, sv in arrays.items()},
        "per_run": table.per_run(),
        "units": table.units,
        "comparisons": {s: compare_table(arrays[s], pairs) for s in arrays},
        "timing": table.timing(),
        "counts": {**counts, "motions": table.motions},
        "cache": {"hits": table.hits, "misses": table.misses},  # how this run got its samples (cache state)
        "rows": {REAL: {"real": True}, **{row.name: {**row.config, "kind": row.kind, "runs": list(row.runs)}
                                          for row in rows}},
        "notes": notes,
        "settings": {**asdict(settings.metrics), **extra_settings, "evaluator_normalisation": EVALUATOR_NORMALISATION},
    }


def generate_row(row: EvaluationRow, generator: MotionGenerator, captions: Sequence[TestCaption], seed: int,
                 cache_dir: str | Path) -> Sampled:
    """One generated set of a row's run (cached)."""
    return cached_generate(generator, condition_texts(captions, row.conditioning), [c.length for c in captions],
                           row.sampling, seed, cache_dir)


def generate_mm(row: EvaluationRow, generator: MotionGenerator, captions: Sequence[TestCaption], mm_idx: np.ndarray,
                repeats: int, seed: int, cache_dir: str | Path) -> Sampled:
    """The MultiModality set of a row's run: ``repeats`` motions for each caption of ``mm_idx`` (cached)."""
    cond = condition_texts([captions[i] for i in mm_idx for _ in range(repeats)], row.conditioning)
    return cached_generate(generator, cond, [captions[i].length for i in mm_idx for _ in range(repeats)],
                           row.sampling, seed, cache_dir)


def evaluate(settings: EvaluationSettings, captions: Sequence[TestCaption], real: list[np.ndarray],
             spaces: dict[str, Evaluator], generators: dict[str, MotionGenerator], window: int,
             cache_dir: str | Path) -> dict[str, Any]:
    """Evaluate Real and every row (caption-level protocol); ``spaces`` are the metric spaces in report order
    (the first is primary), ``generators`` the trained runs by name. A row's units are its runs x replications:
    replication r of run j scores generated set ``r % generation_seeds`` of that run with its own draws.

    Generated sets are cached in ``cache_dir`` (``cached_generate``), so a rerun only recomputes metrics.
    """
    n, seed, m = len(captions), settings.metrics.seed, settings.metrics
    notes = protocol_notes(n, settings)
    rows, skipped = usable_rows(settings, generators)
    notes += skipped
    texts = text_embeddings(captions, spaces)
    real_emb = embed_set(spaces, real, captions)
    table = Table(list(spaces))
    children = np.random.SeedSequence(seed).spawn(m.replications)
    for r, child in enumerate(children):
        table.put(REAL, f"real/r{r}", score_set(real_emb, real_emb.whole, texts, child, m), n if r == 0 else 0)
    seeds = [seed + s for s in range(settings.generation_seeds)]
    if m.replications > len(seeds):
        notes.append(f"{len(seeds)} generated set(s) per row and run for {m.replications} replications: the "
                     "CIs of FID, MM-Dist and similarities (deterministic given a set) reflect "
                     + ("only one generation" if len(seeds) == 1 else f"{len(seeds)} generations")
                     + " per training run.")
    mm_idx = np.sort(np.random.default_rng([seed, 7]).choice(n, min(settings.mm_texts, n), replace=False))
    for row in rows:
        for run in row.runs:
            generator = generators[run]
            sets = []
            for s in seeds:
                got = generate_row(row, generator, captions, s, cache_dir)
                table.sampled(row.name, got, n)
                sets.append(got.motions)
            mm = None
            if row.multimodality:
                got = generate_mm(row, generator, captions, mm_idx, settings.mm_repeats, seed + 100_000, cache_dir)
                table.hits, table.misses = table.hits + got.hit, table.misses + (not got.hit)
                mm = got.motions
            embedded = [embed_set(spaces, motions, captions, mm, settings.mm_repeats) for motions in sets]
            for r, child in enumerate(children):
                count = (n if r < len(seeds) else 0) + (len(mm) if mm and r == 0 else 0)  # each motion counted once
                table.put(row.name, f"{run}/r{r}", score_set(embedded[r % len(seeds)], real_emb.whole, texts, child, m),
                          count)
    counts = {"captions": n, "replications": m.replications, "generation_seeds": len(seeds),
              "diversity_pairs": min(m.diversity_times, n),
              "multimodality": f"{len(mm_idx)} texts x {settings.mm_repeats} motions, {m.mm_times} pairs each"}
    return {"protocol": "lgtm", **results_of(table, settings, rows, counts, notes, {"window": window})}
