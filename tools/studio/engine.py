"""The studio's one adapter to the inference module and the trained models.

Generation reuses the command line's code: ``models.inference`` loads the LGTM with its Mean/Std and text
latents (``LGTMGenerator.load``) and samples one motion at a time (``part_sampler``); ``tools.generate.generate``
writes joints.npy, features.npy, motion.bvh and parts.json and ``tools.generate.write_video`` motion.mp4: the
same files, made by the same code, as ``python -m tools.generate``.

Params are read in one place, ``Engine.from_settings``, into a ``StudioConfig``; nothing else here (or in the
server) looks at params. The engine is not thread-safe on purpose: the studio calls it from its single device
worker only (``tools.studio.jobs.DeviceWorker``), so two generations never run at once on one device.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.inference import SPLITS, LGTMGenerator, TrainedLGTM
from motion.core.errors import DataError
from motion.core.parts import PART_JOINTS, PART_NAMES, TEXT_SLOTS
from motion.core.sampling import SAMPLERS, SamplingConfig
from motion.core.skeleton import JOINT_NAMES, PARENTS
from motion.data.clipstore import FEATURE_VECS, open_features
from motion.text.embeddings import EncoderSettings
from motion.text.split import SplitSettings
from tools.generate import FPS

if TYPE_CHECKING:
    from stages.settings import Settings

SPLITTERS = SPLITS  # rules | llm | none, as tools.generate --split
ENCODERS = TEXT_SLOTS  # the TMR encoders a search can use: whole_body and the six parts
SEARCH_MAX_FRAMES = 200  # TMR's crop length for the motions of the search index
REPAIR = "run make repro first"
LLM_TIMEOUT_S = 15.0  # the page waits for the splitter: an LLM endpoint that hangs falls back to the rules
WARM_UP = SamplingConfig("dpmsolver++", 2, 0.0, 1.0)
OFFICIAL = "official"  # the released LGTM as stages.import_official converts it (official.out)


class ModelsMissing(RuntimeError):
    """The trained models (or their inputs) are absent: the message names the file and says to run make repro."""


@dataclass(frozen=True)
class StudioConfig:
    """What the studio takes from params (built by ``Engine.from_settings`` only)."""

    trained: TrainedLGTM            # the pipeline's LGTM and what it conditions on (paths, lgtm.text_latents, seed)
    texts: Path                     # paths.texts: part_texts.parquet (the search's captions)
    cache: Path                     # paths.cache: the splitter's cache
    official: Path                  # official.out: the released LGTM and TMRs converted by import_official
    reports: dict[str, Path]        # report name -> its pipeline folder (paths.evaluate, paths.prompt_study)
    sampling: SamplingConfig        # the page's default sampler settings (lgtm.sampling)
    split: SplitSettings            # split_texts
    encoder: EncoderSettings        # embed_texts: encodes texts the embed_texts stage never saw
    device: str                     # cpu | cuda (resolved compute.device)
    threads: int                    # torch CPU threads (0: torch's default)


@dataclass(frozen=True)
class SplitResult:
    """The six part texts of a caption, the splitter that produced them and a note for the page."""

    parts: dict[str, str]
    backend: str
    note: str = ""


@dataclass(frozen=True)
class GenerationSettings:
    """One validated request of the page: texts, length and sampler settings, number of samples."""

    caption: str
    parts: dict[str, str]
    frames: int
    sampler: str
    steps: int
    seed: int
    guidance_scale: float
    samples: int
    model: str
    split: str = "rules"
    hand_set: tuple[str, ...] = ()

    def sampling(self) -> SamplingConfig:
        """The sampler settings of the request (deterministic DDIM: eta 0)."""
        return SamplingConfig(self.sampler, self.steps, 0.0, self.guidance_scale)


@dataclass
class SampleResult:
    """One written sample: its folder and file names."""

    index: int
    folder: Path
    files: list[str] = field(default_factory=list)


def skeleton() -> dict[str, Any]:
    """Joint names, parents and the body part of each joint (the root belongs to the torso) for the viewer."""
    part_of = ["torso"] * len(JOINT_NAMES)
    for part, joints in PART_JOINTS.items():
        for j in joints:
            part_of[j] = part
    return {"joints": list(JOINT_NAMES), "parents": list(PARENTS), "part_of": part_of, "parts": list(PART_NAMES),
            "fps": FPS}


def check_model_folder(folder: Path) -> None:
    """Raise ModelsMissing unless ``folder`` holds a trained LGTM (config.json and model.safetensors)."""
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise ModelsMissing(f"{folder / name} is missing: {REPAIR}")


def model_trained_with_dropout(folder: Path) -> bool:
    """True when the LGTM of ``folder`` was trained with text dropout (so classifier-free guidance applies)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return float((config.get("train", {}) or {}).get("cond_drop_prob", 0.0) or 0.0) > 0.0


def find_models(lgtm: Path, official_out: Path, extra: dict[str, str] | None = None) -> dict[str, Path]:
    """Selectable model folders: ``pipeline`` (``lgtm``), ``official`` (``<official_out>/lgtm``, the released
    model converted by ``stages.import_official``, when present) and the extras {name: folder}."""
    models = {"pipeline": Path(lgtm)}
    official = Path(official_out) / "lgtm"
    if (official / "config.json").is_file() and (official / "model.safetensors").is_file():
        models[OFFICIAL] = official
    for name, folder in (extra or {}).items():
        models[name] = Path(folder)
    return models


def warm_up(generator: LGTMGenerator) -> None:
    """One short throw-away sample, so the first generation of the page does not pay the first-call costs."""
    from models.inference import part_sampler

    part_sampler(generator, WARM_UP, seed=0)("a person stands still", {p: "does nothing" for p in PART_NAMES},
                                            generator.window)


class Engine:
    """The trained models of one params file, loaded once and kept warm; generation, splitting and search."""

    def __init__(self, config: StudioConfig, models: dict[str, Path] | None = None) -> None:
        self.config = config
        self.device = config.device
        self.models = dict(models or find_models(config.trained.lgtm, config.official))
        self.default_model = next(iter(self.models))
        self.splitter = config.split.backend
        self._loaded: dict[str, LGTMGenerator] = {}
        self._tokens: Any = None
        self._search: dict[str, SearchIndex] = {}

    @classmethod
    def from_settings(cls, settings: Settings, device: str | None = None,
                      extra_models: dict[str, str] | None = None) -> Engine:
        """The engine of the typed params (``stages.settings.load_settings``): the one place the studio reads them.

        ``device`` (cpu | cuda | auto) overrides ``compute.device``; ``extra_models`` adds selectable model folders.
        Threads are those of ``tools.generate`` (``compute.threads.prompt_study``).
        """
        from motion.core.device import resolve_device
        from motion.core.settings import convert
        from motion.text.embeddings import encoder_settings

        paths = settings.paths
        resolved = resolve_device(device or settings.compute.device)
        config = StudioConfig(
            trained=TrainedLGTM.at({**asdict(paths), "lgtm": settings.pipeline_lgtm()}, settings.lgtm.text_latents,
                                   settings.seed),
            texts=Path(paths.texts), cache=Path(paths.cache), official=Path(settings.official.out),
            reports={"evaluate": Path(paths.evaluate), "prompt_study": Path(paths.prompt_study)},
            sampling=convert(SamplingConfig, settings.lgtm.sampling),
            split=convert(SplitSettings, settings.split_texts),
            encoder=encoder_settings(settings.embed_texts, resolved), device=resolved,
            threads=settings.compute.threads.prompt_study)
        return cls(config, find_models(config.trained.lgtm, config.official, extra_models))

    # ------------------------------------------------------------------ loading

    def check(self) -> None:
        """Raise ModelsMissing with one line (file + "run make repro first") when the default model can't load."""
        check_model_folder(self.models[self.default_model])
        for name in ("Mean.npy", "Std.npy"):
            if not (self.config.trained.features / name).is_file():
                raise ModelsMissing(f"{self.config.trained.features / name} is missing: {REPAIR}")

    def load(self, name: str | None = None) -> LGTMGenerator:
        """The generator of model ``name`` (default: the first), loaded on first use, warmed up and kept."""
        name = name or self.default_model
        if name not in self.models:
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(self.models)}")
        if name not in self._loaded:
            folder = self.models[name]
            check_model_folder(folder)
            generator = LGTMGenerator.load(self.trained_of(name), self.device, batch_size=1, tokens=self.token_source)
            warm_up(generator)
            self._loaded[name] = generator
        return self._loaded[name]

    def trained_of(self, name: str) -> TrainedLGTM:
        """What model ``name`` conditions on: the released model its own TMRs and HumanML3D's Mean/Std
        (``TrainedLGTM.released``), any other folder the pipeline's."""
        trained = self.config.trained
        if name == OFFICIAL and self.models[name] == self.config.official / "lgtm":
            return TrainedLGTM.released(self.config.official, trained.embeddings, trained.seed)
        return replace(trained, lgtm=self.models[name])

    def describe(self) -> dict[str, Any]:
        """What the page needs: models (window, guidance), samplers, defaults, splitter, encoders, skeleton."""
        models = []
        for name, folder in self.models.items():
            entry: dict[str, Any] = {"name": name, "folder": str(folder), "loaded": name in self._loaded}
            try:
                config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
                entry["window"] = int(config["model"]["window"])
                entry["guidance"] = model_trained_with_dropout(folder)
            except (OSError, ValueError, KeyError, TypeError):
                entry["error"] = f"{folder / 'config.json'} is missing or unreadable: {REPAIR}"
            models.append(entry)
        defaults = self.config.sampling
        return {"models": models, "default_model": self.default_model, "samplers": list(SAMPLERS),
                "defaults": {"sampler": defaults.sampler, "steps": defaults.steps,
                             "guidance_scale": defaults.guidance_scale},
                "splitter": self.splitter, "splitters": list(SPLITTERS), "encoders": list(ENCODERS),
                "search": self.search_available(), "skeleton": skeleton()}

    # ------------------------------------------------------------------ part texts

    def split(self, caption: str, backend: str | None = None) -> SplitResult:
        """The six part texts of the configured splitter; an LLM failure falls back to the rules, with a note."""
        from motion.text.split import split_unique

        backend = backend or self.splitter
        if backend not in SPLITTERS:
            raise ValueError(f"unknown splitter {backend!r}; choose one of {', '.join(SPLITTERS)}")
        if backend == "none":
            return SplitResult({p: caption for p in PART_NAMES}, "none", "every part gets the whole caption")
        llm = self.config.split.llm  # interactive: one retry, a short timeout, then the rules
        llm = replace(llm, max_retries=min(llm.max_retries, 1), timeout_s=min(llm.timeout_s, LLM_TIMEOUT_S),
                      max_backoff_s=1.0)
        settings = replace(self.config.split, backend=backend, on_failure="rules", llm=llm)
        note = ""
        try:
            results, backend_of, _ = split_unique([caption], settings, self.config.cache, progress=False)
            used = backend_of[caption]
            if used != backend:
                note = "the LLM splitter failed on this caption; fell back to the rules splitter"
                used = "rules"
        except Exception as err:  # noqa: BLE001 - any LLM backend failure (network, endpoint, reply) falls back
            if backend == "rules":
                raise
            results = {caption: settings.rules.split(caption)}
            used = "rules"
            reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            note = f"the LLM splitter is unavailable ({reason}); fell back to the rules splitter"
        return SplitResult({p: results[caption][p]["text"] for p in PART_NAMES}, used, note)

    # ------------------------------------------------------------------ generation

    def generate(self, settings: GenerationSettings, out_dir: Path, on_step: Callable[[int, int], None],
                 on_sample: Callable[[SampleResult, np.ndarray], None], video: bool = True) -> list[SampleResult]:
        """Sample ``settings.samples`` motions (seeds seed, seed+1, ...) into out_dir/sample_<i>/.

        ``on_step(done, total)`` ticks once per denoising step over all samples; ``on_sample`` gets each sample as
        soon as its joints are written (before its video), so the page can show it while the mp4 renders.
        """
        from models.inference import part_sampler
        from tools.generate import generate, write_video

        generator = self.load(settings.model)
        if not 1 <= settings.frames <= generator.window:
            raise ValueError(f"length {settings.frames} frames is outside this model's window 1..{generator.window}")
        cfg = settings.sampling()
        total = settings.samples * settings.steps
        calls = [0]

        def tick(*_: Any) -> None:
            calls[0] += 1
            on_step(min(calls[0], total), total)

        hook = generator.model.register_forward_hook(tick)  # one forward per denoising step (guidance batches both)
        results = []
        try:
            for i in range(settings.samples):
                seed = settings.seed + i
                meta = {"split": settings.split, "hand_set": sorted(settings.hand_set), **asdict(cfg), "seed": seed,
                        "model": settings.model}
                folder = out_dir / f"sample_{i}"
                files = generate(settings.caption, settings.parts, settings.frames, part_sampler(generator, cfg, seed),
                                 generator.mean, generator.std, folder, meta, video=False)
                result = SampleResult(i, folder, sorted(files))
                on_sample(result, np.load(files["joints.npy"]))
                results.append(result)
        finally:
            hook.remove()
        if video:
            for result in results:
                write_video(result.folder, np.load(result.folder / "joints.npy"), settings.caption, settings.parts)
                result.files = sorted(set(result.files) | {"motion.mp4"})
        return results

    # ------------------------------------------------------------------ search

    def search_available(self) -> bool:
        """True when the TMR encoders, the caption table and the features of the dataset are all there."""
        tmr, features = self.config.trained.tmr, self.config.trained.features
        return (all((tmr / e / "model.safetensors").is_file() for e in ENCODERS)
                and (self.config.texts / "part_texts.parquet").is_file()
                and (features / "part_stats.npz").is_file() and (features / "splits").is_dir())

    def token_source(self) -> Any:
        """Token features of a text (the embed_texts output, else the configured encoder), made once."""
        if self._tokens is None:
            import motion.text.embeddings as embeddings
            from models.text_latents import TokenSource

            self._tokens = TokenSource(self.config.trained.embeddings,
                                       lambda: embeddings.make_encoder(self.config.encoder))
        return self._tokens

    def search(self, text: str, encoder: str, k: int) -> list[dict[str, Any]]:
        """Top-k dataset motions for ``text`` under the TMR ``encoder`` (whole_body or a part), best first."""
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
        if not self.search_available():
            raise ModelsMissing(f"{self.config.trained.tmr} (TMR encoders) or the dataset is missing: {REPAIR}")
        if encoder not in self._search:
            self._search[encoder] = SearchIndex.build(self.config, encoder, self.device)
        return self._search[encoder].query(text, self.token_source(), k)

    def dataset_joints(self, seg_id: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Joints (T, 22, 3) of a dataset caption's segment (one already returned by a search) and its texts."""
        from motion.data.features import recover_from_ric

        for index in self._search.values():
            if seg_id in index.by_id:
                entry = index.entries[index.by_id[seg_id]]
                store = open_features(self.config.trained.features)
                features = store.load(entry["motion_id"], FEATURE_VECS)[entry["first"]:entry["last"]].astype(np.float64)
                return recover_from_ric(features).astype(np.float32), entry
        raise KeyError(seg_id)



@dataclass
class SearchIndex:
    """Motion latents of every dataset caption segment under one TMR encoder, with the segments' texts."""

    encoder: str
    model: Any
    latents: np.ndarray
    entries: list[dict[str, Any]]
    by_id: dict[str, int]
    device: str

    @classmethod
    def build(cls, config: StudioConfig, encoder: str, device: str) -> SearchIndex:
        """Encode every caption segment of the dataset (splits/all.txt, else train+val+test) once."""
        import pandas as pd
        import torch

        from models.tmr import load_tmr
        from motion.datasets import (
            SpanRule,
            feature_dims,
            load_part_stats,
            pad_sequences,
            read_segments,
            read_split,
            table_captions,
            text_column,
        )

        features, table_path = config.trained.features, config.texts / "part_texts.parquet"
        try:
            ids = read_split(features, "all")
        except DataError:
            ids = [i for split in ("train", "val", "test") for i in read_split(features, split)]
        captions = table_captions(table_path, ids, text_column(encoder))
        segments = read_segments(features, captions, SpanRule("tmr", 0, None))  # every caption, whatever its length
        table = pd.read_parquet(table_path).set_index("seg_id")
        mean, std = load_part_stats(features / "part_stats.npz", encoder)
        dims = feature_dims(encoder)
        model = load_tmr(config.trained.tmr / encoder, device)
        latents, entries = [], []
        batch: list[torch.Tensor] = []

        def flush() -> None:
            motion, mask = pad_sequences(batch)
            with torch.no_grad():
                latents.append(model.encode_motion(motion.to(device), mask.to(device)).float().cpu().numpy())
            batch.clear()

        store = open_features(features)
        for seg in segments:
            last = min(seg.end, seg.start + SEARCH_MAX_FRAMES)
            feats = store.load(seg.motion_id, FEATURE_VECS)[seg.start:last]
            if dims is not None:
                feats = feats[:, dims]
            batch.append(torch.from_numpy(((feats - mean) / std).astype(np.float32)))
            row = table.loc[seg.seg_id]
            entries.append({"seg_id": seg.seg_id, "motion_id": seg.motion_id, "caption": str(row["caption"]),
                            "part_text": None if encoder == "whole_body" else seg.text,
                            "first": seg.start, "last": last, "frames": last - seg.start})
            if len(batch) == 64:
                flush()
        if batch:
            flush()
        if not entries:
            raise DataError(table_path, "no caption segment to search", REPAIR)
        stacked = np.concatenate(latents)
        stacked /= np.linalg.norm(stacked, axis=1, keepdims=True) + 1e-12
        return cls(encoder, model, stacked, entries, {e["seg_id"]: i for i, e in enumerate(entries)}, device)

    def query(self, text: str, tokens: Callable[[str], np.ndarray], k: int) -> list[dict[str, Any]]:
        """The k best segments (one per motion) by cosine similarity of TMR latents."""
        import torch

        tok = torch.from_numpy(np.asarray(tokens(text), dtype=np.float32))[None].to(self.device)
        with torch.no_grad():
            latent = self.model.encode_text(tok, torch.ones(tok.shape[:2], dtype=torch.bool,
                                                            device=self.device))[0].float().cpu().numpy()
        scores = self.latents @ (latent / (np.linalg.norm(latent) + 1e-12))
        out, seen = [], set()
        for i in np.argsort(-scores, kind="stable"):
            entry = self.entries[int(i)]
            if entry["motion_id"] in seen:
                continue
            seen.add(entry["motion_id"])
            out.append({key: entry[key] for key in ("seg_id", "motion_id", "caption", "part_text", "frames")}
                       | {"score": round(float(scores[i]), 4)})
            if len(out) == k:
                break
        return out
