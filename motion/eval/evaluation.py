"""Text-to-motion evaluation of LGTM: test captions, cached generations, evaluator embeddings, metric rows.

All glue to the other parts of the pipeline lives here (TMR via ``models.tmr.load_tmr``, LGTM via
``models.lgtm_train.load_lgtm`` + ``models.diffusion.sample_features``, text latents as ``train_lgtm``).

Normalisation is explicit: generated motions come out of LGTM HumanML3D-normalised (Mean/Std) and are
de-normalised here with Mean/Std; every evaluator gets de-normalised features and applies its own
statistics (TMR: ``part_stats.npz`` of the part, as the encoders were trained; T2M: its meta mean/std).

Replications: replication r uses generated set ``r % generation_seeds`` (one independent generation per
seed) and its own random draws for R-precision batches, Diversity and MultiModality pairs.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from motion.core.errors import DataError
from motion.eval.metrics import (cosine_similarity_score, diversity, fid, matching_score, multimodality,
                            part_r_precision, r_precision)
from motion.core.parts import FEATURE_DIM, PART_INDICES, PART_NAMES
from motion.eval.confidence import mean_ci95, welch_test

WHOLE_BODY = "whole_body"
ENCODERS: tuple[str, ...] = (WHOLE_BODY,) + PART_NAMES
R_BATCH = 32


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
                       window: int, min_frames: int = 40, max_frames: int = 200, max_captions: int = 0,
                       seed: int = 0, split: str = "test") -> list[TestCaption]:
    """Test captions as LGTM reads them, centre-cropped to the model's window, optionally a seeded subset."""
    from motion.data.captions import read_captions
    from motion.data.captions import read_part_annotations
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
    def from_folders(cls, tmr_root: str | Path, embeddings_dir: str | Path, part_stats: str | Path,
                     device: str = "cpu", encoders: Sequence[str] = ENCODERS) -> "TMREvaluator":
        """Load ``<tmr_root>/<name>`` for each encoder, the token features and the per-part statistics."""
        from models.tmr import load_tmr
        from motion.datasets import load_part_stats
        from motion.text.embeddings import TextEmbeddings

        models = {n: load_tmr(Path(tmr_root) / n, device) for n in encoders}
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

@dataclass(frozen=True)
class SamplerSetting:
    """How one row samples: sampler, step count, DDIM eta, classifier-free guidance scale."""

    sampler: str = "ddim"
    steps: int = 50
    eta: float = 0.0
    guidance_scale: float = 1.0


class MotionGenerator(Protocol):
    """Anything that turns 7 texts + a length into de-normalised HumanML3D features (length, 263)."""

    fingerprint: str
    supports_guidance: bool

    def generate(self, texts: Sequence[tuple[str, ...]], lengths: Sequence[int], setting: SamplerSetting,
                 seed: int) -> list[np.ndarray]:
        """One motion per (texts, length), deterministic given the seed."""
        ...


def file_digest(paths: Sequence[Path]) -> str:
    """SHA-256 over the names and bytes of files (sorted), for cache keys."""
    h = hashlib.sha256()
    for p in sorted(paths, key=str):
        h.update(str(p.name).encode())
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
    return h.hexdigest()


class LGTMGenerator:
    """The trained LGTM (``paths.lgtm``) with the frozen text latents it was trained on (as train_lgtm)."""

    def __init__(self, params: dict[str, Any], device: str = "cpu", batch_size: int = 32) -> None:
        from models.lgtm_train import CONFIG_FILE, MODEL_FILE, load_lgtm
        from models.text_latents import RandomTextLatents, TMRTextLatents
        from motion.datasets import load_normalisation

        paths, section = params["paths"], params.get("lgtm", {}) or {}
        folder = Path(paths["lgtm"])
        self.model = load_lgtm(folder, device)
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        self.supports_guidance = float((config.get("train") or {}).get("cond_drop_prob", 0.0)) > 0.0
        self.mean, self.std = load_normalisation(paths["features"])
        keyed = [folder / MODEL_FILE, folder / CONFIG_FILE, Path(paths["features"]) / "Mean.npy",
                 Path(paths["features"]) / "Std.npy"]
        if section.get("text_latents", "tmr") == "random":
            self.provider = RandomTextLatents(int(self.model.cfg.text_dim), seed=int(params.get("seed", 0)))
            latent_key = f"random:{params.get('seed', 0)}"
        else:
            tmr_root = Path(paths["tmr"])
            self.provider = TMRTextLatents(tmr_root, paths["embeddings"], device=device)
            keyed += sorted(tmr_root.glob("*/model.safetensors")) + [Path(paths["embeddings"]) / "tokens.npy"]
            latent_key = "tmr"
        self.fingerprint = f"{latent_key}:{file_digest(keyed)}"
        self.device, self.batch_size = device, batch_size

    def latents(self, texts: Sequence[tuple[str, ...]]) -> np.ndarray:
        """(B, 7, D) text latents, slot by slot in TEXT_SLOTS order."""
        from models.lgtm import TEXT_SLOTS

        return np.stack([self.provider.encode(slot, [t[k] for t in texts]) for k, slot in enumerate(TEXT_SLOTS)],
                        axis=1)

    def generate(self, texts: Sequence[tuple[str, ...]], lengths: Sequence[int], setting: SamplerSetting,
                 seed: int) -> list[np.ndarray]:
        """Sample in batches; batch b draws its noise from torch.Generator seeded (seed, b)."""
        import torch
        from tqdm import tqdm

        from models.diffusion import SamplingConfig, sample_features

        mean, std = torch.from_numpy(self.mean).float(), torch.from_numpy(self.std).float()
        cfg = SamplingConfig.from_dict(asdict(setting))
        out: list[np.ndarray] = []
        starts = range(0, len(texts), self.batch_size)
        for b, start in enumerate(tqdm(starts, desc=f"{setting.sampler} {setting.steps} steps seed {seed}",
                                       unit="batch", leave=False)):
            chunk = list(texts[start:start + self.batch_size])
            latents = torch.from_numpy(self.latents(chunk)).float().to(self.device)
            gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + b)
            lens = list(lengths[start:start + len(chunk)])
            # LGTM outputs HumanML3D-normalised features: de-normalised here (the evaluators re-normalise)
            features = sample_features(self.model, latents, torch.tensor(lens, device=self.device), mean, std, cfg, gen)
            out.extend(f.float().cpu().numpy() for f in features)
        return out


def sample_key(fingerprint: str, setting: SamplerSetting, seed: int, texts: Sequence[tuple[str, ...]],
               lengths: Sequence[int]) -> str:
    """Cache key of one generated set: checkpoint, sampler settings, seed and the exact captions/lengths."""
    captions = hashlib.sha256(json.dumps([list(texts), list(map(int, lengths))]).encode()).hexdigest()
    raw = json.dumps({"model": fingerprint, "setting": asdict(setting), "seed": int(seed), "captions": captions},
                     sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def cached_generate(generator: MotionGenerator, texts: Sequence[tuple[str, ...]], lengths: Sequence[int],
                    setting: SamplerSetting, seed: int, cache_dir: str | Path) -> tuple[list[np.ndarray], bool]:
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

    replications: int = 20
    diversity_times: int = 300
    mm_times: int = 10
    seed: int = 0


def row_metrics(row: RowData, real: np.ndarray, texts: np.ndarray, part_texts: dict[str, tuple[np.ndarray, list[str]]],
                settings: MetricSettings) -> dict[str, np.ndarray]:
    """Per-replication values (replications,) of every metric of a row."""
    n = len(texts)
    times = min(settings.diversity_times, n)
    children = np.random.SeedSequence(settings.seed).spawn(settings.replications)
    values: dict[str, list[float]] = {}

    def put(name: str, value: float) -> None:
        values.setdefault(name, []).append(float(value))

    for r, child in enumerate(children):
        rng = np.random.default_rng(child)
        k = r % len(row.motions)
        motion = row.motions[k]
        put("fid", fid(real, motion))
        if n >= R_BATCH:
            for i, v in enumerate(r_precision(texts, motion, rng)):
                put(f"r_precision_top{i + 1}", v)
        put("mm_dist", matching_score(texts, motion))
        put("diversity", diversity(motion, rng, times))
        if row.mm is not None:
            put("multimodality", multimodality(row.mm, rng, settings.mm_times))
        for enc, (text_latents, raw_texts) in part_texts.items():
            latents = row.parts[enc][k]
            put(f"{enc}.similarity", cosine_similarity_score(latents, text_latents))
            if n >= R_BATCH:
                for i, v in enumerate(part_r_precision(text_latents, latents, raw_texts, rng)):
                    put(f"{enc}.r_precision_top{i + 1}", v)
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
