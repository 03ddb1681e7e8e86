"""Validation of what the page sends: every bad value becomes one clear line (``UserError``)."""
from __future__ import annotations

from typing import Any

from motion.core.parts import PART_NAMES
from tools.studio.engine import ENCODERS, FPS, SAMPLERS, SPLITTERS, GenerationSettings
from tools.studio.jobs import UserError

MAX_CAPTION_CHARS = 300
MAX_PART_CHARS = 200
MAX_SAMPLES = 4
MAX_STEPS = 1000
MAX_SEARCH_K = 50
MAX_SEED = 2**31 - 1
NO_MOTION = "does nothing"


def clean_text(value: Any, what: str, limit: int, allow_empty: bool = False) -> str:
    """Whitespace-normalised text; empty, non-text or over-long values raise UserError."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UserError(f"{what} must be text")
    text = " ".join(value.split())
    if not text and not allow_empty:
        raise UserError(f"{what} is empty: type what the person does")
    if len(text) > limit:
        raise UserError(f"{what} is {len(text)} characters long; the limit is {limit}")
    return text


def integer(value: Any, what: str, low: int, high: int) -> int:
    """An integer in [low, high] (from a number or a numeric string)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number") from None
    if not number.is_integer():
        raise UserError(f"{what} must be a whole number, got {value}")
    if not low <= number <= high:
        raise UserError(f"{what} {int(number)} is outside {low}..{high}")
    return int(number)


def real(value: Any, what: str, low: float, high: float) -> float:
    """A finite number in [low, high]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number") from None
    if not low <= number <= high:  # also rejects NaN
        raise UserError(f"{what} {value} is outside {low:g}..{high:g}")
    return number


def caption_of(body: dict[str, Any]) -> str:
    """The validated caption of a request body."""
    return clean_text(body.get("caption"), "the caption", MAX_CAPTION_CHARS)


def splitter_of(body: dict[str, Any], default: str) -> str:
    """The splitter asked for (default: the configured one)."""
    backend = body.get("splitter") or default
    if backend not in SPLITTERS:
        raise UserError(f"unknown splitter {backend!r}; choose one of {', '.join(SPLITTERS)}")
    return str(backend)


def generation_settings(body: Any, info: dict[str, Any]) -> GenerationSettings:
    """A GenerationSettings from the page's JSON body, checked against the chosen model (``info``: Engine.describe)."""
    if not isinstance(body, dict):
        raise UserError("the request must be a JSON object")
    caption = caption_of(body)
    models = {m["name"]: m for m in info["models"]}
    name = body.get("model") or info["default_model"]
    if name not in models:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(models)}")
    model = models[name]
    if "error" in model:
        raise UserError(model["error"])
    window = int(model["window"])
    raw_parts = body.get("parts") or {}
    if not isinstance(raw_parts, dict):
        raise UserError("the part texts must be an object {part: text}")
    unknown = sorted(set(raw_parts) - set(PART_NAMES))
    if unknown:
        raise UserError(f"unknown body part {unknown[0]!r}; the parts are {', '.join(PART_NAMES)}")
    parts = {}
    for p in PART_NAMES:
        text = clean_text(raw_parts.get(p), f"the {p.replace('_', ' ')} text", MAX_PART_CHARS, allow_empty=True)
        parts[p] = text or NO_MOTION  # a cleared part does nothing
    if "seconds" in body and body.get("seconds") not in (None, ""):
        seconds = real(body["seconds"], "the length in seconds", 1 / FPS, window / FPS)
        frames = int(round(seconds * FPS))
    else:
        frames = integer(body.get("frames", window), "the length in frames", 1, window)
    if not 1 <= frames <= window:
        raise UserError(f"the length {frames} frames is outside this model's window 1..{window}")
    sampler = body.get("sampler") or info["defaults"]["sampler"]
    if sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    steps = integer(body.get("steps", info["defaults"]["steps"]), "the number of steps", 1, MAX_STEPS)
    seed = integer(body.get("seed", 0), "the seed", 0, MAX_SEED)
    guidance = real(body.get("guidance_scale", 1.0), "the guidance scale", 0.0, 20.0)
    if guidance != 1.0 and not model.get("guidance"):
        raise UserError(f"the model {name!r} was trained without text dropout: guidance needs scale 1")
    samples = integer(body.get("samples", 1), "the number of samples", 1, MAX_SAMPLES)
    hand_set = body.get("hand_set") or []
    if not isinstance(hand_set, list) or not set(hand_set) <= set(PART_NAMES):
        raise UserError("hand_set must list body part names")
    split = str(body.get("splitter") or info["splitter"])
    if split not in SPLITTERS:
        raise UserError(f"unknown splitter {split!r}; choose one of {', '.join(SPLITTERS)}")
    return GenerationSettings(caption, parts, frames, str(sampler), steps, seed, guidance, samples, str(name), split,
                              tuple(sorted(hand_set)))


def search_query(body: Any) -> tuple[str, str, int]:
    """(text, encoder, k) of a search request."""
    if not isinstance(body, dict):
        raise UserError("the request must be a JSON object")
    text = clean_text(body.get("text"), "the search text", MAX_CAPTION_CHARS)
    encoder = body.get("encoder") or "whole_body"
    if encoder not in ENCODERS:
        raise UserError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    return text, str(encoder), integer(body.get("k", 10), "the number of results", 1, MAX_SEARCH_K)
