"""LGTM's part annotation schema: six parts, each ``{"action": str, "text": str}``, idle when absent.

Replies from a language model are parsed leniently where the meaning is unambiguous (code fences,
an ``Output:`` prefix, synonyms such as ``left_hand``) and rejected otherwise with a
``SchemaError`` that says what was wrong, so the caller can retry or record the failure.
"""
from __future__ import annotations

import json
import re
from typing import Any

from motion.core.parts import PART_NAMES
from motion.data.captions import IDLE

PartAnnotation = dict[str, dict[str, str]]

# Words a model may use for a part, mapped onto the six parts (LGTM's prompt asks for the same replacements).
PART_SYNONYMS: dict[str, str] = {
    "left_hand": "left_arm", "right_hand": "right_arm",
    "left_foot": "left_leg", "right_foot": "right_leg",
    "hip": "torso", "hips": "torso", "waist": "torso", "body": "torso", "upper_body": "torso",
    "neck": "head", "face": "head",
}


class SchemaError(ValueError):
    """A reply that cannot be read as a part annotation."""


def is_idle(part: dict[str, str]) -> bool:
    """Whether a part entry means the part does nothing."""
    return part.get("action", "idle").strip().lower() in ("idle", "", "none")


def active_parts(annotation: PartAnnotation) -> set[str]:
    """The parts that do something (non-idle)."""
    return {p for p in PART_NAMES if p in annotation and not is_idle(annotation[p])}


def _part_key(key: str) -> str:
    norm = re.sub(r"[\s\-]+", "_", key.strip().lower())
    norm = PART_SYNONYMS.get(norm, norm)
    if norm not in PART_NAMES:
        raise SchemaError(f"unknown body part {key!r} (expected one of {', '.join(PART_NAMES)})")
    return norm


def _clean_field(value: Any, name: str, part: str) -> str:
    if not isinstance(value, str):
        raise SchemaError(f"{part}.{name} is {type(value).__name__}, expected a string")
    value = " ".join(value.split())
    if not value:
        raise SchemaError(f"{part}.{name} is empty")
    return value


def validate_part_annotation(obj: Any) -> PartAnnotation:
    """Check a decoded JSON object against the schema and return all six parts (idle filled in)."""
    if not isinstance(obj, dict):
        raise SchemaError(f"expected a JSON object of body parts, got {type(obj).__name__}")
    out: PartAnnotation = {}
    for key, value in obj.items():
        part = _part_key(str(key))
        if part in out:
            raise SchemaError(f"body part {part!r} appears twice")
        if isinstance(value, str):  # a bare description: the action is its first word
            text = _clean_field(value, "text", part)
            value = {"action": text.split()[0].lower(), "text": text}
        if not isinstance(value, dict):
            raise SchemaError(f"{part} is {type(value).__name__}, expected {{action, text}}")
        extra = set(value) - {"action", "text"}
        if extra:
            raise SchemaError(f"{part} has unknown fields {sorted(extra)}")
        if "action" not in value or "text" not in value:
            raise SchemaError(f"{part} misses field(s) {sorted({'action', 'text'} - set(value))}")
        out[part] = {"action": _clean_field(value["action"], "action", part).lower(),
                     "text": _clean_field(value["text"], "text", part)}
    return {p: dict(out.get(p, IDLE)) for p in PART_NAMES}


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def parse_reply(reply: str) -> PartAnnotation:
    """Parse a model's reply (JSON, possibly fenced or prefixed with ``Output:``) into six parts."""
    text = reply.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    text = re.sub(r"^\s*output\s*:\s*", "", text, flags=re.I)
    if not text.startswith("{"):
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise SchemaError(f"reply holds no JSON object: {reply.strip()[:80]!r}")
        text = text[start:end + 1]
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise SchemaError(f"reply is not valid JSON ({err.msg} at char {err.pos}): {reply.strip()[:80]!r}") from None
    return validate_part_annotation(obj)
