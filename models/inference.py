"""Inference with the trained LGTM: the generator (model + HumanML3D Mean/Std + the text latents it was trained
on), the one sampling loop, de-normalisation, features -> joints, and the samplers the callers plug in.

Callers: ``tools.generate`` (one motion, ``part_sampler``, optionally guided by constraints and inpainting),
``stages.prompt_study`` (``study_sampler``: joints for the IK-vs-FK study; ``guided_study_sampler``: the same
with explicit constraints enforced during sampling, ``models.guidance``),
``stages.evaluate`` (``LGTMGenerator.generate``: the ``MotionGenerator`` of
``motion.eval.evaluation``) and the TMR text-motion similarity of the prompt study (``similarity_scorer``).

Seeds: every sampling batch b draws its noise from ``torch.Generator().manual_seed(noise_seed(b))``; the
callers keep their own rule (evaluation: seed * 1_000_003 + b; prompt study: seed + b; generate: seed).
Text latents follow the batching each caller has always used (evaluation: one padded TMR batch per sampling
batch; prompt study and generate: each text alone), so the numbers of earlier runs are reproduced exactly.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.checkpoint import CONFIG_FILE, MODEL_FILE, load_lgtm
from models.diffusion import X0Guidance, sample
from models.guidance import (
    DEFAULT_ITERATIONS,
    DEFAULT_STRENGTH,
    Constraint,
    MotionGuidance,
    check_frames,
    parse_constraints,
    reference_parts,
)
from models.text_latents import TextLatentProvider, Tokens, slot_latents, text_latents
from motion.core.parts import PART_DIMS, PART_NAMES, merge_parts
from motion.core.sampling import SamplingConfig
from motion.data.features import recover_from_ric
from motion.study.prompt_study import MotionSampler, TextMotionSimilarity, tmr_similarity
from motion.text.split import SplitSettings

# A part sampler: (caption, six part texts, frames) -> normalised part features {part: (frames, d_part)}.
PartSampler = Callable[[str, dict[str, str], int], dict[str, np.ndarray]]
# Sampling batch index -> the seed of its noise generator.
NoiseSeed = Callable[[int], int]
# (first motion of a sampling batch, its size) -> the guidance of that batch (None: unguided).
BatchGuidance = Callable[[int, int], X0Guidance | None]
# (prompts, parts, frames, seed, constraint text per prompt) -> joint motions (T, 22, 3): the guided study arm.
GuidedMotionSampler = Callable[[list[str], list[dict[str, str]], list[int], int, list[str]], list[np.ndarray]]


@dataclass(frozen=True)
class TrainedLGTM:
    """Where a trained LGTM and what it conditions on live (params ``paths`` + ``lgtm.text_latents`` + ``seed``)."""

    lgtm: Path          # config.json + model.safetensors (paths.lgtm)
    features: Path      # Mean.npy / Std.npy of the features stage (paths.features)
    tmr: Path           # the TMR models whose text encoders give the latents (paths.tmr)
    embeddings: Path    # the token features of embed_texts the TMR text encoders read (paths.embeddings)
    text_latents: str   # tmr | random (lgtm.text_latents)
    seed: int           # the seed of random text latents (params seed, as train_lgtm)

    @classmethod
    def released(cls, folder: str | Path, embeddings: str | Path, seed: int) -> TrainedLGTM:
        """The released LGTM as ``stages.import_official`` converts it (``official.out``): ``lgtm/`` holds the
        model and HumanML3D's published Mean/Std, ``tmr/<slot>/`` the official TMRs whose text encoders give
        the latents (their token features must be DistilBERT's: ``embed_texts.encoder: distilbert``)."""
        folder = Path(folder)
        return cls(folder / "lgtm", folder / "lgtm", folder / "tmr", Path(embeddings), "tmr", seed)

    @classmethod
    def at(cls, paths: Mapping[str, str], text_latents: str, seed: int) -> TrainedLGTM:
        """The trained LGTM of params ``paths`` (lgtm, features, tmr, embeddings)."""
        return cls(Path(paths["lgtm"]), Path(paths["features"]), Path(paths["tmr"]), Path(paths["embeddings"]),
                   text_latents, seed)


# ----------------------------------------------------------------------------- de-normalisation and joints

def denormalise(parts: dict[str, np.ndarray], mean: np.ndarray, std: np.ndarray, dtype: type) -> np.ndarray:
    """HumanML3D-normalised part features {part: (T, d)} -> de-normalised features (T, 263), computed in ``dtype``."""
    merged = merge_parts({p: np.asarray(parts[p], dtype=dtype) for p in PART_NAMES})
    return merged * np.asarray(std, dtype) + np.asarray(mean, dtype)


def features_to_joints(parts: dict[str, np.ndarray], mean: np.ndarray,
                       std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised part features {part: (T, d)} -> de-normalised features (T, 263) and joints (T, 22, 3), float32.

    De-normalised in float64 so the joints are recovered from the exact features.
    """
    for p in PART_NAMES:
        if p not in parts or parts[p].ndim != 2 or parts[p].shape[1] != PART_DIMS[p]:
            raise ValueError(f"sampler output for {p!r} must have shape (T, {PART_DIMS[p]})")
    features = denormalise(parts, mean, std, np.float64)
    return features.astype(np.float32), recover_from_ric(features).astype(np.float32)


# ----------------------------------------------------------------------------- the generator

def file_digest(paths: Sequence[Path]) -> str:
    """SHA-256 over the names and bytes of files (sorted), for cache keys."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(paths, key=str):
        h.update(str(p.name).encode())
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
    return h.hexdigest()


class LGTMGenerator:
    """A trained LGTM with its normalisation and text latents: texts + lengths -> motions (the one sampling loop)."""

    def __init__(self, model: Any, mean: np.ndarray, std: np.ndarray, latents: TextLatentProvider, device: str,
                 batch_size: int, fingerprint: str = "", supports_guidance: bool = False) -> None:
        self.model, self.mean, self.std, self.provider = model, mean, std, latents
        self.device, self.batch_size = device, batch_size
        self.fingerprint, self.supports_guidance = fingerprint, supports_guidance

    @classmethod
    def load(cls, trained: TrainedLGTM, device: str, batch_size: int,
             tokens: Callable[[], Tokens] | None = None) -> LGTMGenerator:
        """Load the model, Mean/Std and the text latents it was trained with; fingerprint the files they come from.

        ``tokens()`` may supply the token features of TMR latents (default: those of ``trained.embeddings``)."""
        from motion.datasets import load_normalisation

        model = load_lgtm(trained.lgtm, device)
        config = json.loads((trained.lgtm / CONFIG_FILE).read_text(encoding="utf-8"))
        guidance = float((config.get("train") or {}).get("cond_drop_prob", 0.0)) > 0.0
        mean, std = load_normalisation(trained.features)
        provider = text_latents(trained.text_latents, dim=int(model.cfg.text_dim), seed=trained.seed,
                                tmr_root=trained.tmr, embeddings=trained.embeddings, tokens=tokens, device=device)
        keyed = [trained.lgtm / MODEL_FILE, trained.lgtm / CONFIG_FILE, trained.features / "Mean.npy",
                 trained.features / "Std.npy", *provider.inputs]
        return cls(model, mean, std, provider, device, batch_size, f"{provider.key}:{file_digest(keyed)}", guidance)

    @property
    def window(self) -> int:
        """The longest motion the model generates (frames)."""
        return int(self.model.cfg.window)

    def latents(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        """(N, 7, D) text latents of N captions' 7 texts, slot by slot in TEXT_SLOTS order."""
        return slot_latents(self.provider, texts)

    def sample_parts(self, latents: np.ndarray, lengths: Sequence[int], cfg: SamplingConfig, noise_seed: NoiseSeed,
                     progress: bool = False, guidance: BatchGuidance | None = None) -> list[dict[str, np.ndarray]]:
        """Normalised part features {part: (length, d)} per motion, sampled in batches of ``batch_size``.

        A bar counts the batches; ``progress`` adds one per batch over its denoising steps. ``guidance`` gives
        each batch its x0 guidance (``models.diffusion.sample``); without it sampling is unguided."""
        out: list[dict[str, np.ndarray]] = []
        starts = range(0, len(lengths), self.batch_size)
        bar = tqdm(starts, desc=f"{cfg.sampler} {cfg.steps} steps", unit="batch", leave=False)
        for b, start in enumerate(bar):
            lens = [int(n) for n in lengths[start:start + self.batch_size]]
            cond = torch.from_numpy(np.asarray(latents[start:start + len(lens)])).float().to(self.device)
            parts = sample(self.model, cond, torch.tensor(lens, device=self.device), cfg,
                           generator=torch.Generator().manual_seed(int(noise_seed(b))), progress=progress,
                           guidance=None if guidance is None else guidance(start, len(lens)))
            out.extend({p: parts[p][i, :n].float().cpu().numpy() for p in PART_NAMES} for i, n in enumerate(lens))
        return out

    def generate(self, texts: Sequence[tuple[str, ...]], lengths: Sequence[int], setting: SamplingConfig,
                 seed: int) -> list[np.ndarray]:
        """De-normalised HumanML3D features (length, 263) float32 per (7 texts, length); batch b seeded (seed, b)."""
        if not texts:
            return []
        # one padded text-latent batch per sampling batch, as the evaluation has always encoded them
        latents = np.concatenate([self.latents(texts[s:s + self.batch_size])
                                  for s in range(0, len(texts), self.batch_size)])
        parts = self.sample_parts(latents, lengths, setting, lambda b: int(seed) * 1_000_003 + b)
        # LGTM outputs HumanML3D-normalised features: de-normalised here (the evaluators re-normalise)
        return [denormalise(p, self.mean, self.std, np.float32) for p in parts]


# ----------------------------------------------------------------------------- prompts and samplers of the callers

SPLITS = ("rules", "llm", "none")


def split_prompt(caption: str, given: dict[str, str], split: str, splitter: SplitSettings,
                 cache_dir: str | Path) -> tuple[dict[str, str], str]:
    """The six part texts of a prompt and how they were made: hand-set ones, the rest from the ``split``
    backend (or the caption with ``none``). The second value names the splitter that answered: ``given``,
    ``none``, ``rules``, ``llm`` or ``rules (llm failed)`` when the LLM endpoint failed and the rules stood in.
    ``splitter`` holds the splitter's settings (params ``split_texts``), ``cache_dir`` its cache."""
    if split not in SPLITS:
        raise ValueError(f"part-text split {split!r}: choose one of {', '.join(SPLITS)}")
    missing = [p for p in PART_NAMES if p not in given]
    if not missing:
        return dict(given), "given"
    if split == "none":
        return {p: given.get(p, caption) for p in PART_NAMES}, "none"
    from motion.text.split import split_unique

    settings = dataclasses.replace(splitter, backend=split)
    results, backend_of, _ = split_unique([caption], settings, cache_dir, progress=False)
    annotation = results[caption]
    return {p: given[p] if p in given else annotation[p]["text"] for p in PART_NAMES}, backend_of[caption]


def resolve_part_texts(caption: str, given: dict[str, str], split: str, splitter: SplitSettings,
                       cache_dir: str | Path) -> dict[str, str]:
    """The six part texts of a prompt (see :func:`split_prompt`)."""
    return split_prompt(caption, given, split, splitter, cache_dir)[0]


def caption_latents(generator: LGTMGenerator, caption: str, part_texts: dict[str, str]) -> np.ndarray:
    """(7, D) latents of one caption and its six part texts, each text encoded alone."""
    return generator.latents([(caption, *(part_texts[p] for p in PART_NAMES))])[0]


def part_sampler(generator: LGTMGenerator, cfg: SamplingConfig, seed: int, *, constraints: Sequence[Constraint] = (),
                 strength: float = DEFAULT_STRENGTH, iterations: int = DEFAULT_ITERATIONS,
                 reference: np.ndarray | None = None, keep_parts: Sequence[str] = ()) -> PartSampler:
    """One motion at a time (the generate command): normalised part features of (caption, part texts, frames).

    ``constraints`` are enforced by guidance of ``strength`` and ``iterations`` (``models.guidance``);
    ``reference`` (T, 263) de-normalised features with ``keep_parts`` regenerate only the other parts
    (inpainting). With none of them sampling is the plain one."""
    guided = bool(constraints) or bool(keep_parts)

    def run(caption: str, part_texts: dict[str, str], frames: int) -> dict[str, np.ndarray]:
        if not 1 <= frames <= generator.window:
            raise ValueError(f"{frames} frames asked for: this LGTM model generates 1..{generator.window} frames "
                             "(its window); ask for fewer frames or train with a larger lgtm model window")
        check_frames(constraints, frames)
        if keep_parts and (reference is None or len(reference) < frames):
            raise ValueError(f"inpainting {frames} frames needs a reference motion of at least {frames} frames")
        latents = caption_latents(generator, caption, part_texts)[None]
        guidance = None
        if guided:
            guidance = motion_guidance(generator, [list(constraints)], strength, iterations, reference, keep_parts)
        return generator.sample_parts(latents, [frames], cfg, lambda b: seed, progress=True,
                                      guidance=None if guidance is None else lambda start, n: guidance)[0]

    return run


def motion_guidance(generator: LGTMGenerator, constraints: Sequence[Sequence[Constraint]], strength: float,
                    iterations: int = DEFAULT_ITERATIONS, reference: np.ndarray | None = None,
                    keep_parts: Sequence[str] = ()) -> MotionGuidance:
    """The guidance of one sampling batch: one constraint list per motion, the generator's Mean/Std, and the
    inpainting reference (de-normalised features (T, 263), shared by the batch) with the parts it keeps."""
    mean = torch.from_numpy(np.asarray(generator.mean, np.float32))
    std = torch.from_numpy(np.asarray(generator.std, np.float32))
    packed = None
    if reference is not None:
        packed = reference_parts(reference, generator.mean, generator.std, generator.window)
        packed = packed.expand(len(constraints), -1, -1).to(generator.device)
    return MotionGuidance(constraints, mean.to(generator.device), std.to(generator.device), strength, iterations,
                          reference=packed, keep_parts=tuple(keep_parts))


def prompt_latents(generator: LGTMGenerator, prompts: list[str], parts: list[dict[str, str]]) -> np.ndarray:
    """(N, 7, D) latents of N prompts and their part texts; each distinct prompt's latents are computed once."""
    cache: dict[tuple[str, ...], np.ndarray] = {}
    keys = [(prompt, *(texts[p] for p in PART_NAMES)) for prompt, texts in zip(prompts, parts)]
    for key in keys:
        if key not in cache:
            cache[key] = caption_latents(generator, key[0], dict(zip(PART_NAMES, key[1:])))
    return np.stack([cache[k] for k in keys])


def study_sampler(generator: LGTMGenerator, cfg: SamplingConfig) -> MotionSampler:
    """(prompts, parts, frames, seed) -> joint motions, sampled in batches (batch b draws its noise from seed + b).

    On a CPU a batch of 40 costs little more than one motion; each distinct prompt's latents are computed once.
    """

    def run(prompts: list[str], parts: list[dict[str, str]], frames: list[int], seed: int) -> list[np.ndarray]:
        if not prompts:
            return []
        sampled = generator.sample_parts(prompt_latents(generator, prompts, parts), frames, cfg, lambda b: seed + b,
                                         progress=True)
        return [features_to_joints(p, generator.mean, generator.std)[1] for p in sampled]

    return run


def guided_study_sampler(generator: LGTMGenerator, cfg: SamplingConfig, guidance_strength: float,
                         iterations: int = DEFAULT_ITERATIONS) -> GuidedMotionSampler:
    """``study_sampler`` plus explicit IK: each prompt's constraint text (``models.guidance`` syntax, '' for none)
    is enforced by guidance of ``guidance_strength`` (``iterations`` guidance steps per denoising step). Batches
    and noise seeds are those of ``study_sampler``, so with the same arguments a guided motion starts from its
    unguided twin's noise."""
    if not guidance_strength >= 0 or iterations < 1:
        raise ValueError(f"guidance strength {guidance_strength} must be >= 0, iterations {iterations} >= 1")

    def run(prompts: list[str], parts: list[dict[str, str]], frames: list[int], seed: int,
            constraints: list[str]) -> list[np.ndarray]:
        if len(constraints) != len(prompts):
            raise ValueError(f"{len(constraints)} constraint texts for {len(prompts)} prompts")
        parsed = [parse_constraints(text) for text in constraints]
        for cs, n in zip(parsed, frames):
            check_frames(cs, int(n))
        if not prompts:
            return []

        def batch(start: int, count: int) -> MotionGuidance:
            return motion_guidance(generator, parsed[start:start + count], guidance_strength, iterations)

        sampled = generator.sample_parts(prompt_latents(generator, prompts, parts), frames, cfg, lambda b: seed + b,
                                         progress=True, guidance=batch)
        return [features_to_joints(p, generator.mean, generator.std)[1] for p in sampled]

    return run


def similarity_scorer(tmr_folder: str | Path, part_stats: str | Path, tokens: Tokens,
                      device: str) -> TextMotionSimilarity:
    """Text-motion similarity under the trained whole-body TMR in ``tmr_folder`` (normalised with its part_stats)."""
    from models.tmr import load_tmr
    from motion.datasets import load_part_stats

    folder = Path(tmr_folder)
    if folder.name != "whole_body":
        raise ValueError(f"prompt_study.tmr_encoder {folder.name!r}: only whole_body scores a whole-body motion")
    mean, std = load_part_stats(part_stats, folder.name)
    return tmr_similarity(load_tmr(folder, device), tokens, mean, std, device)
