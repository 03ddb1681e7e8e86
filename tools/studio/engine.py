"""The studio's one adapter to the generation glue and the trained models.

Everything the studio needs from ``tools.generate`` (model loading, text latents, the part sampler, the
feature -> joints -> files path) goes through this module, so the glue can move without touching the server:
``Engine.generate`` calls ``tools.generate.generate`` (joints.npy, features.npy, motion.bvh, parts.json) and then
``tools.generate.write_video`` (motion.mp4): the same files, made by the same code, as the command line.

The engine is not thread-safe on purpose: the studio calls it from its single device worker only
(``tools.studio.jobs.DeviceWorker``), so two generations never run at once on one device.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from motion.core.errors import DataError
from motion.core.parts import PART_JOINTS, PART_NAMES
from motion.core.skeleton import JOINT_NAMES, PARENTS

FPS = 20
SAMPLERS = ("ddim", "dpmsolver++")
SPLITTERS = ("rules", "llm", "none")
ENCODERS = ("whole_body",) + PART_NAMES
SEARCH_MAX_FRAMES = 200  # TMR's crop length for the motions of the search index
REPAIR = "run make repro first"
LLM_TIMEOUT_S = 15.0  # the page waits for the splitter: an LLM endpoint that hangs falls back to the rules


class ModelsMissing(RuntimeError):
    """The trained models (or their inputs) are absent: the message names the file and says to run make repro."""


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


@dataclass
class SampleResult:
    """One written sample: its folder and file names."""

    index: int
    folder: Path
    files: list[str] = field(default_factory=list)


@dataclass
class LoadedModel:
    """A model kept warm: the LGTM, its text-latent function and its window."""

    model: Any
    text_latents: Callable[[list[str]], np.ndarray]
    window: int
    guidance: bool


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


def find_models(params: dict[str, Any], extra: dict[str, str] | None = None) -> dict[str, Path]:
    """Selectable model folders: ``pipeline`` (paths.lgtm), ``official`` (the released one, when present) and extras."""
    paths = params.get("paths", {}) or {}
    models = {"pipeline": Path(paths.get("lgtm", "data/lgtm"))}
    official = Path(paths.get("assets", "data/raw/assets")) / "lgtm_checkpoints"
    if (official / "config.json").is_file() and (official / "model.safetensors").is_file():
        models["official"] = official
    for name, folder in (extra or {}).items():
        models[name] = Path(folder)
    return models


def warm_up(loaded: LoadedModel, device: str) -> None:
    """One short throw-away sample, so the first generation of the page does not pay the first-call costs."""
    from tools.generate import SamplingRequest, lgtm_part_sampler

    request = SamplingRequest(sampler="dpmsolver++", steps=2, seed=0)
    texts = {p: "does nothing" for p in PART_NAMES}
    lgtm_part_sampler(loaded.model, loaded.text_latents, request, device)("a person stands still", texts,
                                                                          loaded.window)


class Engine:
    """The trained models of one params file, loaded once and kept warm; generation, splitting and search."""

    def __init__(self, params: dict[str, Any], device: str = "cpu", models: dict[str, Path] | None = None) -> None:
        self.params = params
        self.device = device
        self.paths = params.get("paths", {}) or {}
        self.models = dict(models or find_models(params))
        self.default_model = next(iter(self.models))
        self._loaded: dict[str, LoadedModel] = {}
        self._mean_std: tuple[np.ndarray, np.ndarray] | None = None
        self._tokens: Any = None
        self._search: dict[str, "SearchIndex"] = {}
        section = params.get("lgtm", {}) or {}
        chosen = (section.get("configs", {}) or {}).get(section.get("config", ""), {}) or {}
        self.sampling_defaults = {**(section.get("sampling", {}) or {}), **(chosen.get("sampling", {}) or {})}
        self.splitter = str((params.get("split_texts", {}) or {}).get("backend", "rules"))

    # ------------------------------------------------------------------ loading

    def check(self) -> None:
        """Raise ModelsMissing with one line (file + "run make repro first") when the default model can't load."""
        check_model_folder(self.models[self.default_model])
        features = Path(self.paths.get("features", "data/features"))
        for name in ("Mean.npy", "Std.npy"):
            if not (features / name).is_file():
                raise ModelsMissing(f"{features / name} is missing: {REPAIR}")

    def load(self, name: str | None = None) -> LoadedModel:
        """The model ``name`` (default: the first), loaded on first use and kept."""
        from models.lgtm_train import load_lgtm
        from tools.generate import text_latents_for

        name = name or self.default_model
        if name not in self.models:
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(self.models)}")
        if name not in self._loaded:
            folder = self.models[name]
            check_model_folder(folder)
            model = load_lgtm(folder, self.device)
            loaded = LoadedModel(model, text_latents_for(self.params, model, self.device), int(model.cfg.window),
                                 model_trained_with_dropout(folder))
            warm_up(loaded, self.device)
            self._loaded[name] = loaded
        return self._loaded[name]

    def normalisation(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean/Std of the features stage."""
        if self._mean_std is None:
            from motion.datasets_lgtm import load_normalisation

            self._mean_std = load_normalisation(self.paths.get("features", "data/features"))
        return self._mean_std

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
        return {"models": models, "default_model": self.default_model, "samplers": list(SAMPLERS),
                "defaults": {"sampler": str(self.sampling_defaults.get("sampler", "ddim")),
                             "steps": int(self.sampling_defaults.get("steps", 50)),
                             "guidance_scale": float(self.sampling_defaults.get("guidance_scale", 1.0))},
                "splitter": self.splitter, "splitters": list(SPLITTERS), "encoders": list(ENCODERS),
                "search": self.search_available(), "skeleton": skeleton()}

    # ------------------------------------------------------------------ part texts

    def split(self, caption: str, backend: str | None = None) -> SplitResult:
        """The six part texts of the configured splitter; an LLM failure falls back to the rules, with a note."""
        from motion.text.split import SplitSettings, split_unique

        backend = backend or self.splitter
        if backend not in SPLITTERS:
            raise ValueError(f"unknown splitter {backend!r}; choose one of {', '.join(SPLITTERS)}")
        if backend == "none":
            return SplitResult({p: caption for p in PART_NAMES}, "none", "every part gets the whole caption")
        section = dict(self.params.get("split_texts", {}) or {})
        section.update(backend=backend, on_failure="rules")
        llm = dict(section.get("llm", {}) or {})  # interactive: one retry, a short timeout, then the rules
        llm.update(max_retries=min(int(llm.get("max_retries", 5)), 1),
                   timeout_s=min(float(llm.get("timeout_s", 30.0)), LLM_TIMEOUT_S), max_backoff_s=1.0)
        section["llm"] = llm
        settings = SplitSettings.from_params(section)
        note = ""
        try:
            results, backend_of, _ = split_unique([caption], settings, self.paths.get("cache", "data/cache"),
                                                  progress=False)
            used = backend_of[caption]
            if used != backend:
                note = "the LLM splitter failed on this caption; fell back to the rules splitter"
                used = "rules"
        except Exception as err:  # noqa: BLE001 - any LLM backend failure (network, endpoint, reply) falls back
            if backend == "rules":
                raise
            results = {caption: settings.rules.split(caption)}
            used = "rules"
            note = f"the LLM splitter is unavailable ({str(err).splitlines()[0][:160]}); fell back to the rules splitter"
        return SplitResult({p: results[caption][p]["text"] for p in PART_NAMES}, used, note)

    # ------------------------------------------------------------------ generation

    def generate(self, settings: GenerationSettings, out_dir: Path, on_step: Callable[[int, int], None],
                 on_sample: Callable[[SampleResult, np.ndarray], None], video: bool = True) -> list[SampleResult]:
        """Sample ``settings.samples`` motions (seeds seed, seed+1, ...) into out_dir/sample_<i>/.

        ``on_step(done, total)`` ticks once per denoising step over all samples; ``on_sample`` gets each sample as
        soon as its joints are written (before its video), so the page can show it while the mp4 renders.
        """
        from tools.generate import SamplingRequest, generate, lgtm_part_sampler, write_video

        loaded = self.load(settings.model)
        if not 1 <= settings.frames <= loaded.window:
            raise ValueError(f"length {settings.frames} frames is outside this model's window 1..{loaded.window}")
        mean, std = self.normalisation()
        total = settings.samples * settings.steps
        calls = [0]

        def tick(*_: Any) -> None:
            calls[0] += 1
            on_step(min(calls[0], total), total)

        hook = loaded.model.register_forward_hook(tick)  # one forward per denoising step (guidance batches both)
        results = []
        try:
            for i in range(settings.samples):
                request = SamplingRequest(sampler=settings.sampler, steps=settings.steps, eta=0.0,
                                          guidance_scale=settings.guidance_scale, seed=settings.seed + i)
                sampler = lgtm_part_sampler(loaded.model, loaded.text_latents, request, self.device)
                meta = {"split": settings.split, "hand_set": sorted(settings.hand_set), "model": settings.model,
                        **asdict(request)}
                folder = out_dir / f"sample_{i}"
                files = generate(settings.caption, settings.parts, settings.frames, sampler, mean, std, folder,
                                 meta, video=False)
                joints = np.load(files["joints.npy"])
                result = SampleResult(i, folder, sorted(files))
                on_sample(result, joints)
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
        tmr = Path(self.paths.get("tmr", "data/tmr"))
        texts = Path(self.paths.get("texts", "data/texts")) / "part_texts.parquet"
        features = Path(self.paths.get("features", "data/features"))
        return (all((tmr / e / "model.safetensors").is_file() for e in ENCODERS) and texts.is_file()
                and (features / "part_stats.npz").is_file() and (features / "splits").is_dir())

    def token_source(self) -> Any:
        """Token features of a text (the embed_texts output, else the configured encoder)."""
        if self._tokens is None:
            from tools.generate import TokenSource

            self._tokens = TokenSource(self.paths.get("embeddings", "data/embeddings"),
                                       self.params.get("embed_texts", {}) or {})
        return self._tokens

    def search(self, text: str, encoder: str, k: int) -> list[dict[str, Any]]:
        """Top-k dataset motions for ``text`` under the TMR ``encoder`` (whole_body or a part), best first."""
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
        if not self.search_available():
            raise ModelsMissing(f"{self.paths.get('tmr', 'data/tmr')} (TMR encoders) or the dataset is missing: "
                                f"{REPAIR}")
        if encoder not in self._search:
            self._search[encoder] = SearchIndex.build(self.paths, encoder, self.device)
        return self._search[encoder].query(text, self.token_source(), k)

    def dataset_joints(self, seg_id: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Joints (T, 22, 3) of a dataset caption's segment (one already returned by a search) and its texts."""
        from motion.data.features import recover_from_ric

        for index in self._search.values():
            if seg_id in index.by_id:
                entry = index.entries[index.by_id[seg_id]]
                path = Path(self.paths["features"]) / "new_joint_vecs" / f"{entry['motion_id']}.npy"
                features = np.load(path)[entry["first"]:entry["last"]].astype(np.float64)
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
    def build(cls, paths: dict[str, Any], encoder: str, device: str) -> "SearchIndex":
        """Encode every segment of the dataset (splits/all.txt, else train+val+test) once."""
        import pandas as pd
        import torch

        from models.tmr import load_tmr
        from motion.datasets import feature_dims, load_part_stats, pad_sequences, read_segments, read_split

        features = Path(paths["features"])
        try:
            ids = read_split(features, "all")
        except DataError:
            ids = [i for split in ("train", "val", "test") for i in read_split(features, split)]
        table_path = Path(paths["texts"]) / "part_texts.parquet"
        segments = read_segments(table_path, features, ids, encoder)
        table = pd.read_parquet(table_path).set_index("seg_id")
        mean, std = load_part_stats(features / "part_stats.npz", encoder)
        dims = feature_dims(encoder)
        model = load_tmr(Path(paths["tmr"]) / encoder, device)
        latents, entries = [], []
        batch: list[torch.Tensor] = []

        def flush() -> None:
            motion, mask = pad_sequences(batch)
            with torch.no_grad():
                latents.append(model.encode_motion(motion.to(device), mask.to(device)).float().cpu().numpy())
            batch.clear()

        for seg in segments:
            last = min(seg.last, seg.first + SEARCH_MAX_FRAMES)
            feats = np.load(features / "new_joint_vecs" / f"{seg.motion_id}.npy", mmap_mode="r")[seg.first:last]
            if dims is not None:
                feats = feats[:, dims]
            batch.append(torch.from_numpy(((feats - mean) / std).astype(np.float32)))
            row = table.loc[seg.seg_id]
            entries.append({"seg_id": seg.seg_id, "motion_id": seg.motion_id, "caption": str(row["caption"]),
                            "part_text": None if encoder == "whole_body" else str(row[f"{encoder}_text"]),
                            "first": seg.first, "last": last, "frames": last - seg.first})
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
