"""Generation command: a caption (and optionally part texts) and a length -> joints, features, BVH, mp4.

    python -m tools.generate --text "a person waves the right hand" --frames 60 \\
        [--part right_arm="waves the right hand" ...] [--split rules|llm|none] \\
        [--sampler ddim|dpmsolver++] [--steps 50] [--seed 0] [--params params.yaml] --out outputs/wave/ \\
        [--constraint "near right_wrist left_shoulder 0.05 frames 40-60" ...] [--constraints FILE.yaml] \\
        [--guidance-strength 1.0] [--guidance-iterations 5] \\
        [--inpaint-from outputs/walk/features.npy --keep-parts torso,left_leg,right_leg]

Writes into ``--out`` (each file atomically; other files there are left alone):
``joints.npy`` (T, 22, 3) float32 (HumanML3D frame, y up, metres, 20 fps), ``features.npy`` (T, 263) float32
(de-normalised HumanML3D features), ``motion.bvh`` (analytic IK, motion.export.bvh), ``motion.mp4`` (stick figure,
caption burned in) and ``parts.json`` (the caption, the six part texts used and the sampling settings; with
constraints also each constraint's final violation and satisfied fraction of frames).

Explicit IK (``models.guidance``): ``--constraint`` (repeatable; several may be joined with ';') or ``--constraints``
(a YAML list of constraint strings) are enforced by guidance during sampling, with ``--guidance-strength`` (the
fraction of the violation removed by each guidance step) and ``--guidance-iterations`` (guidance steps per
denoising step). ``--inpaint-from`` (de-normalised features (T, 263),
e.g. an earlier run's ``features.npy``) with ``--keep-parts`` keeps those parts of that motion and regenerates
only the others.

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
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.guidance import (
    DEFAULT_ITERATIONS,
    DEFAULT_STRENGTH,
    SYNTAX,
    Constraint,
    check_frames,
    parse_constraints,
    read_constraint_file,
    satisfaction,
)
from models.inference import SPLITS, PartSampler, features_to_joints
from motion.core.errors import DataError
from motion.core.io import save_npy, write_json
from motion.core.parts import PART_NAMES
from motion.core.sampling import SAMPLERS, SamplingConfig
from motion.core.settings import convert
from motion.export.bvh import write_bvh
from motion.export.render import render_video

if TYPE_CHECKING:
    from stages.settings import Settings

FPS = 20


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


# ----------------------------------------------------------------------------- features -> outputs

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
    """Write joints.npy, features.npy, motion.bvh, motion.mp4 and parts.json into ``out_dir``.

    Everything is written into a staging folder inside ``out_dir`` first and moved into place only when
    all files exist, so a failing run never leaves new files beside an older run's; other files in
    ``out_dir`` are kept.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".generate.", suffix=".tmp", dir=out))
    try:
        files = {name: staging / name for name in ("joints.npy", "features.npy", "motion.bvh", "parts.json")}
        save_npy(files["joints.npy"], joints)
        save_npy(files["features.npy"], features)
        write_bvh(files["motion.bvh"], joints, fps=FPS)
        if video:
            files["motion.mp4"] = write_video(staging, joints, caption, part_texts)
        write_json(files["parts.json"], {"caption": caption, "parts": {p: part_texts[p] for p in PART_NAMES},
                                         "frames": int(len(joints)), "fps": FPS, **meta})
        for name, path in files.items():
            os.replace(path, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: out / name for name in ("joints.npy", "features.npy", "motion.bvh", "motion.mp4", "parts.json")
            if name in files}


def generate(caption: str, part_texts: dict[str, str], frames: int, sampler: PartSampler, mean: np.ndarray,
             std: np.ndarray, out_dir: str | Path, meta: dict[str, Any] | None = None,
             video: bool = True, constraints: Sequence[Constraint] = ()) -> dict[str, Path]:
    """Sample one motion, de-normalise it, recover its joints and write every output file.

    ``constraints`` (those the sampler enforced) are measured on the result and recorded in parts.json."""
    parts = sampler(caption, part_texts, frames)
    features, joints = features_to_joints({p: np.asarray(parts[p])[:frames] for p in PART_NAMES}, mean, std)
    if len(joints) != frames:
        raise ValueError(f"the sampler returned {len(joints)} frames, {frames} were asked for")
    if not np.isfinite(joints).all():
        raise ValueError("the sampled motion contains NaN or inf")
    meta = dict(meta or {})
    if constraints:
        meta["constraints"] = satisfaction(constraints, joints)
    return write_outputs(out_dir, features, joints, caption, part_texts, meta, video)


# ----------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m tools.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--text", required=True, help="whole-body caption")
    p.add_argument("--frames", type=int, default=None, help="length at 20 fps (default: the model's window)")
    p.add_argument("--part", action="append", default=[], metavar="NAME=TEXT", help="hand-set part text (repeatable)")
    p.add_argument("--split", choices=SPLITS, default=None, help="splitter for the other parts (default: params)")
    p.add_argument("--sampler", choices=SAMPLERS, default=None, help="default: params lgtm.sampling")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: params lgtm.sampling)")
    p.add_argument("--eta", type=float, default=None, help="DDIM stochasticity (default: params)")
    p.add_argument("--guidance-scale", type=float, default=None, help="classifier-free guidance (default: params)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu | cuda | auto (default: params lgtm.device)")
    p.add_argument("--params", default=None, help="params file (default: $LGTM_PARAMS or params.yaml)")
    p.add_argument("--no-video", action="store_true", help="skip motion.mp4")
    p.add_argument("--constraint", action="append", default=[], metavar="TEXT",
                   help=f"spatial constraint enforced by guidance (repeatable): {SYNTAX}")
    p.add_argument("--constraints", default=None, metavar="FILE.yaml", help="a YAML list of constraint strings")
    p.add_argument("--guidance-strength", type=float, default=DEFAULT_STRENGTH,
                   help="fraction of the constraint violation removed by each guidance step (default 1.0)")
    p.add_argument("--guidance-iterations", type=int, default=DEFAULT_ITERATIONS,
                   help=f"guidance steps per denoising step (default {DEFAULT_ITERATIONS})")
    p.add_argument("--inpaint-from", default=None, metavar="FEATURES.npy",
                   help="reference motion (de-normalised features (T, 263), e.g. a run's features.npy)")
    p.add_argument("--keep-parts", action="append", default=[], metavar="PART[,PART]",
                   help=f"parts kept from --inpaint-from (repeatable or comma-separated): {', '.join(PART_NAMES)}")
    p.add_argument("--out", required=True, help="output folder")
    return p


MAX_CAPTION = 300  # characters


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse bad arguments before anything loads (one line each, as ``ValueError``)."""
    if not args.text.strip():
        raise ValueError("--text is empty: give the whole-body caption, e.g. --text 'a person waves'")
    if len(args.text) > MAX_CAPTION:
        raise ValueError(f"--text has {len(args.text)} characters; at most {MAX_CAPTION}")
    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames {args.frames}: at least 1")
    if args.steps is not None and not 1 <= args.steps <= 1000:
        raise ValueError(f"--steps {args.steps} is outside 1..1000")
    if args.eta is not None and not 0.0 <= args.eta <= 1.0:
        raise ValueError(f"--eta {args.eta} is outside 0..1")
    if args.guidance_scale is not None and not args.guidance_scale >= 0.0:
        raise ValueError(f"--guidance-scale {args.guidance_scale} must be >= 0")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: give a folder")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {existing} is not writable")
    check_guidance_arguments(args)
    if args.device and args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}: torch sees no GPU; use --device cpu or auto")


def requested_constraints(args: argparse.Namespace) -> list[Constraint]:
    """The constraints of ``--constraints FILE`` then ``--constraint`` (syntax errors: one line naming the token)."""
    texts = (read_constraint_file(args.constraints) if args.constraints else []) + list(args.constraint)
    return parse_constraints(texts)


def keep_parts(args: argparse.Namespace) -> list[str]:
    """The parts of ``--keep-parts`` (repeatable, comma-separated), in PART_NAMES order."""
    named = [part.strip() for item in args.keep_parts for part in item.split(",") if part.strip()]
    unknown = [p for p in named if p not in PART_NAMES]
    if unknown:
        raise ValueError(f"--keep-parts {','.join(unknown)}: not a part; parts: {', '.join(PART_NAMES)}")
    return [p for p in PART_NAMES if p in named]


def inpaint_reference(args: argparse.Namespace) -> np.ndarray | None:
    """The de-normalised features (T, 263) of ``--inpaint-from``, or None."""
    if args.inpaint_from is None:
        return None
    path = Path(args.inpaint_from)
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"--inpaint-from {path}: cannot read it as a .npy array ({type(err).__name__}); give a "
                         "features.npy of an earlier run") from None
    if features.ndim != 2 or features.shape[1] != 263 or not np.isfinite(features).all():
        raise ValueError(f"--inpaint-from {path}: expected finite de-normalised features (T, 263), "
                         f"got shape {features.shape}")
    return features


def check_guidance_arguments(args: argparse.Namespace) -> None:
    """Refuse bad constraint, guidance and inpainting arguments (before the model loads)."""
    constraints = requested_constraints(args)
    if not args.guidance_strength >= 0.0 or not np.isfinite(args.guidance_strength):
        raise ValueError(f"--guidance-strength {args.guidance_strength} must be a finite number >= 0")
    if args.guidance_iterations < 1:
        raise ValueError(f"--guidance-iterations {args.guidance_iterations} must be >= 1")
    parts, reference = keep_parts(args), inpaint_reference(args)
    if bool(parts) != (reference is not None):
        raise ValueError("--inpaint-from and --keep-parts go together: give the reference motion and the parts "
                         "to keep from it")
    if args.frames is not None:
        check_frames(constraints, args.frames)
        if reference is not None and len(reference) < args.frames:
            raise ValueError(f"--inpaint-from has {len(reference)} frames, fewer than --frames {args.frames}")


def sampling_settings(settings: Settings, args: argparse.Namespace) -> SamplingConfig:
    """Sampling settings: params ``lgtm.sampling``, then the flags."""
    flags = {k: getattr(args, k) for k in ("sampler", "steps", "eta", "guidance_scale") if getattr(args, k) is not None}
    return convert(SamplingConfig, settings.lgtm.sampling, **flags)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command."""
    args = build_parser().parse_args(argv)
    from stages.settings import load_settings

    try:
        check_arguments(args)
        settings = load_settings(path=args.params)
        import torch

        from models.inference import LGTMGenerator, TrainedLGTM, part_sampler, split_prompt
        from models.text_latents import TokenSource
        from motion.core.device import resolve_device
        from motion.text.embeddings import encoder_settings, make_encoder
        from motion.text.split import SplitSettings

        paths = settings.paths
        if settings.compute.threads.prompt_study:
            torch.set_num_threads(settings.compute.threads.prompt_study)
        device = resolve_device(args.device or settings.compute.device)
        sampling = sampling_settings(settings, args)
        given = parse_part_args(args.part)
        split = args.split or settings.split_texts.backend
        part_texts, split_used = split_prompt(args.text, given, split, convert(SplitSettings, settings.split_texts),
                                              paths.cache)
        if split_used == "rules (llm failed)":
            print("generate: the LLM splitter failed; the rules splitter made the part texts", file=sys.stderr)
        trained = TrainedLGTM(Path(paths.lgtm), Path(paths.features), Path(paths.tmr), Path(paths.embeddings),
                              settings.lgtm.text_latents, settings.seed)

        def tokens() -> TokenSource:
            return TokenSource(paths.embeddings, lambda: make_encoder(encoder_settings(settings.embed_texts, device)))

        constraints, kept, reference = requested_constraints(args), keep_parts(args), inpaint_reference(args)
        generator = LGTMGenerator.load(trained, device, batch_size=1, tokens=tokens)
        frames = generator.window if args.frames is None else args.frames
        if args.frames is None and reference is not None:
            frames = min(frames, len(reference))
        meta = {"split": "rules" if split_used == "rules (llm failed)" else split, "split_used": split_used,
                "hand_set": sorted(given), **asdict(sampling), "seed": args.seed}
        if constraints:
            meta |= {"guidance_strength": args.guidance_strength, "guidance_iterations": args.guidance_iterations}
        if kept:
            meta |= {"inpaint_from": str(args.inpaint_from), "keep_parts": kept}
        sampler = part_sampler(generator, sampling, args.seed, constraints=constraints,
                               strength=args.guidance_strength, iterations=args.guidance_iterations,
                               reference=reference, keep_parts=kept)
        files = generate(args.text, part_texts, frames, sampler, generator.mean, generator.std, args.out, meta,
                         video=not args.no_video, constraints=constraints)
    except (DataError, ValueError, KeyError, OSError) as err:
        sys.exit(f"generate: {err}")
    print(json.dumps({"parts": part_texts, "files": {k: str(v) for k, v in files.items()}}, indent=2))


if __name__ == "__main__":
    main()
