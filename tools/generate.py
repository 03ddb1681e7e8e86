"""Generation command: a caption (and optionally part texts) and a length -> joints, features, BVH, mp4.

    python -m tools.generate --text "a person waves the right hand" --frames 60 \\
        [--part right_arm="waves the right hand" ...] [--split rules|llm|none] \\
        [--sampler ddim|dpmsolver++] [--steps 50] [--seed 0] [--params params.yaml] --out outputs/wave/

Writes into ``--out`` (each file atomically; other files there are left alone):
``joints.npy`` (T, 22, 3) float32 (HumanML3D frame, y up, metres, 20 fps), ``features.npy`` (T, 263) float32
(de-normalised HumanML3D features), ``motion.bvh`` (analytic IK, motion.export.bvh), ``motion.mp4`` (stick figure,
caption burned in) and ``parts.json`` (the caption, the six part texts used and the sampling settings).

Part texts: ``--part name=text`` sets a part by hand; the other parts come from the configured splitter
(params ``split_texts.backend``, or ``--split``): ``rules`` (offline), ``llm`` (the OpenAI-compatible endpoint
of ``split_texts.llm``), or ``none``: every part not set by hand gets the whole caption (what LGTM does for a
caption without part annotation). Trained models come from the DVC outputs named in params.yaml: the LGTM
denoiser (``paths.lgtm``), the frozen TMR text encoders (``paths.tmr``, unless ``lgtm.text_latents: random``),
the token features of ``embed_texts`` (texts never seen there are encoded with ``embed_texts.encoder``) and
Mean/Std of the features stage.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from motion.export.bvh import write_bvh
from motion.core.errors import DataError
from motion.data.features import recover_from_ric
from motion.core.io import save_npy, write_json
from motion.core.parts import PART_DIMS, PART_NAMES, merge_parts
from motion.export.render import render_video

FPS = 20
SPLITS = ("rules", "llm", "none")

# A part sampler: (caption, six part texts, frames) -> normalised part features {part: (frames, d_part)}.
PartSampler = Callable[[str, dict[str, str], int], dict[str, np.ndarray]]


# ----------------------------------------------------------------------------- part texts

def parse_part_args(items: Sequence[str]) -> dict[str, str]:
    """``["right_arm=waves the right hand", ...]`` -> {part: text}; part names as in PART_NAMES ('right arm' ok)."""
    parts: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        part = "_".join(name.strip().lower().replace("-", " ").split())
        if not sep or part not in PART_NAMES or not text.strip():
            raise ValueError(f"--part {item!r}: expected NAME=TEXT with NAME one of {', '.join(PART_NAMES)}")
        parts[part] = " ".join(text.split())
    return parts


def resolve_part_texts(caption: str, given: dict[str, str], split: str, params: dict[str, Any]) -> dict[str, str]:
    """The six part texts: hand-set ones, the rest from the splitter (or the caption with ``none``)."""
    if split not in SPLITS:
        raise ValueError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    missing = [p for p in PART_NAMES if p not in given]
    if not missing or split == "none":
        return {p: given.get(p, caption) for p in PART_NAMES}
    from motion.text.split import SplitSettings, split_unique

    section = dict(params.get("split_texts", {}) or {})
    section["backend"] = split
    settings = SplitSettings.from_params(section)
    results, _, _ = split_unique([caption], settings, params.get("paths", {}).get("cache", "data/cache"),
                                 progress=False)
    annotation = results[caption]
    return {p: given[p] if p in given else annotation[p]["text"] for p in PART_NAMES}


# ----------------------------------------------------------------------------- features -> outputs

def features_to_joints(parts: dict[str, np.ndarray], mean: np.ndarray,
                       std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised part features {part: (T, d)} -> de-normalised features (T, 263) and joints (T, 22, 3), float32."""
    for p in PART_NAMES:
        if p not in parts or parts[p].ndim != 2 or parts[p].shape[1] != PART_DIMS[p]:
            raise ValueError(f"sampler output for {p!r} must have shape (T, {PART_DIMS[p]})")
    normalised = merge_parts({p: np.asarray(parts[p], dtype=np.float64) for p in PART_NAMES})
    features = normalised * np.asarray(std, np.float64) + np.asarray(mean, np.float64)
    joints = recover_from_ric(features)
    return features.astype(np.float32), joints.astype(np.float32)


def video_title(caption: str, part_texts: dict[str, str]) -> str:
    """The line under the caption in the video: the part texts that differ from the caption."""
    own = [f"{p.replace('_', ' ')}: {t}" for p, t in part_texts.items() if t != caption and t != "does nothing"]
    return "; ".join(own)


def write_video(out_dir: str | Path, joints: np.ndarray, caption: str, part_texts: dict[str, str]) -> Path:
    """Render ``motion.mp4`` (stick figure, caption and part texts burned in) into ``out_dir``."""
    path = Path(out_dir) / "motion.mp4"
    render_video(path, [joints], [video_title(caption, part_texts)], caption=caption, fps=FPS, progress=True)
    return path


def write_outputs(out_dir: str | Path, features: np.ndarray, joints: np.ndarray, caption: str,
                  part_texts: dict[str, str], meta: dict[str, Any], video: bool = True) -> dict[str, Path]:
    """Write joints.npy, features.npy, motion.bvh, motion.mp4 and parts.json into ``out_dir`` (each atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / name for name in ("joints.npy", "features.npy", "motion.bvh", "motion.mp4", "parts.json")}
    save_npy(files["joints.npy"], joints)
    save_npy(files["features.npy"], features)
    write_bvh(files["motion.bvh"], joints, fps=FPS)
    if video:
        write_video(out, joints, caption, part_texts)
    else:
        del files["motion.mp4"]
    write_json(files["parts.json"], {"caption": caption, "parts": {p: part_texts[p] for p in PART_NAMES},
                                     "frames": int(len(joints)), "fps": FPS, **meta})
    return files


def generate(caption: str, part_texts: dict[str, str], frames: int, sampler: PartSampler, mean: np.ndarray,
             std: np.ndarray, out_dir: str | Path, meta: dict[str, Any] | None = None,
             video: bool = True) -> dict[str, Path]:
    """Sample one motion, de-normalise it, recover its joints and write every output file."""
    parts = sampler(caption, part_texts, frames)
    features, joints = features_to_joints({p: np.asarray(parts[p])[:frames] for p in PART_NAMES}, mean, std)
    if len(joints) != frames:
        raise ValueError(f"the sampler returned {len(joints)} frames, {frames} were asked for")
    if not np.isfinite(joints).all():
        raise ValueError("the sampled motion contains NaN or inf")
    return write_outputs(out_dir, features, joints, caption, part_texts, meta or {}, video)


# ----------------------------------------------------------------------------- the trained model (glue)

@dataclass
class SamplingRequest:
    """Sampler settings of one generation."""

    sampler: str = "ddim"
    steps: int = 1000
    eta: float = 0.0
    guidance_scale: float = 1.0
    seed: int = 0


def lgtm_part_sampler(model: Any, text_latents: Callable[[list[str]], np.ndarray], request: SamplingRequest,
                      device: str = "cpu") -> PartSampler:
    """The one piece of glue to the LGTM API (models.diffusion.sample): latents of the 7 texts -> part features."""
    import torch

    from models.diffusion import sample
    from models.lgtm import TEXT_SLOTS

    if TEXT_SLOTS != ("whole_body",) + PART_NAMES:
        raise RuntimeError(f"models.lgtm.TEXT_SLOTS changed to {TEXT_SLOTS}; update tools.generate")

    def run(caption: str, part_texts: dict[str, str], frames: int) -> dict[str, np.ndarray]:
        window = int(model.cfg.window)
        if not 1 <= frames <= window:
            raise ValueError(f"--frames {frames}: this LGTM model generates 1..{window} frames (its window); "
                             "ask for fewer frames or train with a larger lgtm model window")
        latents = text_latents([caption] + [part_texts[p] for p in PART_NAMES])  # (7, D) in TEXT_SLOTS order
        generator = torch.Generator().manual_seed(int(request.seed))
        out = sample(model, torch.as_tensor(latents, dtype=torch.float32, device=device)[None],
                     torch.tensor([frames], device=device), sampler=request.sampler, steps=int(request.steps),
                     eta=float(request.eta), guidance_scale=float(request.guidance_scale), generator=generator,
                     progress=True)
        return {p: out[p][0, :frames].float().cpu().numpy() for p in PART_NAMES}

    return run


class TokenSource:
    """Token features of a text: from the embed_texts output when there, else encoded with the configured encoder."""

    def __init__(self, embeddings_dir: str | Path, encoder_section: dict[str, Any]) -> None:
        from motion.text.embeddings import TextEmbeddings

        self.embeddings = TextEmbeddings.load(embeddings_dir)
        self.section = encoder_section
        self._encoder: Any = None

    def __call__(self, text: str) -> np.ndarray:
        """(L, token_dim) float32 token features of ``text`` (float16-rounded like the stored ones)."""
        if text in self.embeddings:
            return self.embeddings.tokens(text)
        if self._encoder is None:
            from motion.text.embeddings import make_encoder

            self._encoder = make_encoder(self.section)
            if self._encoder.cache_id != self.embeddings.encoder:
                raise DataError(self.embeddings.folder, f"was written by {self.embeddings.encoder} but params "
                                f"embed_texts selects {self._encoder.cache_id}", "rerun `dvc repro embed_texts`")
        tokens, _ = self._encoder.encode([text])
        return tokens[0].astype(np.float16).astype(np.float32)


def tmr_text_latents(tmr_root: str | Path, tokens: Callable[[str], np.ndarray],
                     device: str = "cpu") -> Callable[[list[str]], np.ndarray]:
    """Latent means (7, D) of the 7 texts (TEXT_SLOTS order) under the frozen TMR text encoder of each slot."""
    import torch

    from models.lgtm import TEXT_SLOTS
    from models.tmr import load_tmr

    models = {slot: load_tmr(Path(tmr_root) / slot, device) for slot in TEXT_SLOTS}

    def encode(texts: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for slot, text in zip(TEXT_SLOTS, texts):
                tok = torch.from_numpy(tokens(text))[None].to(device)
                mask = torch.ones(tok.shape[:2], dtype=torch.bool, device=device)
                out.append(models[slot].encode_text(tok, mask)[0].float().cpu().numpy())
        return np.stack(out)

    return encode


def text_latents_for(params: dict[str, Any], model: Any, device: str) -> Callable[[list[str]], np.ndarray]:
    """The 7 texts -> (7, D) latents the model was trained with: frozen TMR text encoders, or random ones."""
    from models.lgtm import TEXT_SLOTS
    from models.text_latents import RandomTextLatents

    paths, section = params["paths"], params.get("lgtm", {}) or {}
    if section.get("text_latents", "tmr") == "random":  # as train_lgtm: smoke-run models condition on random latents
        provider = RandomTextLatents(int(model.cfg.text_dim), seed=int(params.get("seed", 0)))
        return lambda texts: np.concatenate([provider.encode(slot, [t]) for slot, t in zip(TEXT_SLOTS, texts)])
    tokens = TokenSource(paths["embeddings"], params.get("embed_texts", {}) or {})
    return tmr_text_latents(paths["tmr"], tokens, device)


def load_trained_sampler(params: dict[str, Any], request: SamplingRequest, device: str) -> tuple[PartSampler, int]:
    """The trained LGTM (paths.lgtm) with its text latents as a PartSampler, and the model's window."""
    from models.lgtm_train import load_lgtm

    model = load_lgtm(params["paths"]["lgtm"], device)
    return lgtm_part_sampler(model, text_latents_for(params, model, device), request, device), int(model.cfg.window)


# ----------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m tools.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--text", required=True, help="whole-body caption")
    p.add_argument("--frames", type=int, default=None, help="length at 20 fps (default: the model's window)")
    p.add_argument("--part", action="append", default=[], metavar="NAME=TEXT", help="hand-set part text (repeatable)")
    p.add_argument("--split", choices=SPLITS, default=None, help="splitter for the other parts (default: params)")
    p.add_argument("--sampler", choices=("ddim", "dpmsolver++"), default=None, help="default: params lgtm.sampling")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: params lgtm.sampling)")
    p.add_argument("--eta", type=float, default=None, help="DDIM stochasticity (default: params)")
    p.add_argument("--guidance-scale", type=float, default=None, help="classifier-free guidance (default: params)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu | cuda | auto (default: params lgtm.device)")
    p.add_argument("--params", default=None, help="params file (default: $LGTM_PARAMS or params.yaml)")
    p.add_argument("--no-video", action="store_true", help="skip motion.mp4")
    p.add_argument("--out", required=True, help="output folder")
    return p


def sampling_request(params: dict[str, Any], args: argparse.Namespace) -> SamplingRequest:
    """Sampling settings: params ``lgtm.sampling`` (with the selected config's overrides), then the flags."""
    section = params.get("lgtm", {}) or {}
    chosen = (section.get("configs", {}) or {}).get(section.get("config", ""), {}) or {}
    values = {**(section.get("sampling", {}) or {}), **(chosen.get("sampling", {}) or {})}
    fields = SamplingRequest.__dataclass_fields__
    request = SamplingRequest(**{k: v for k, v in values.items() if k in fields})
    for name in ("sampler", "steps", "eta", "guidance_scale", "seed"):
        if getattr(args, name) is not None:
            setattr(request, name, getattr(args, name))
    return request


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command."""
    args = build_parser().parse_args(argv)
    from motion.core.config import load_params

    try:
        params = load_params(args.params)
        import torch

        from motion.core.device import resolve_device
        from motion.datasets_lgtm import load_normalisation

        section = params.get("lgtm", {}) or {}
        torch.set_num_threads(int(section.get("num_threads", 2)))
        device = resolve_device(args.device or section.get("device", "auto"))
        request = sampling_request(params, args)
        given = parse_part_args(args.part)
        split = args.split or (params.get("split_texts", {}) or {}).get("backend", "rules")
        part_texts = resolve_part_texts(args.text, given, split, params)
        mean, std = load_normalisation(params["paths"]["features"])
        sampler, window = load_trained_sampler(params, request, device)
        frames = window if args.frames is None else args.frames
        meta = {"split": split, "hand_set": sorted(given), **asdict(request)}
        files = generate(args.text, part_texts, frames, sampler, mean, std, args.out, meta, video=not args.no_video)
    except (DataError, ValueError, KeyError) as err:
        sys.exit(f"generate: {err}")
    print(json.dumps({"parts": part_texts, "files": {k: str(v) for k, v in files.items()}}, indent=2))


if __name__ == "__main__":
    main()
