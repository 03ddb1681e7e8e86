"""HumanML3D caption files (``texts/<id>.txt``) and LGTM part annotations, plus their mirroring.

A caption line is ``caption#word/POS word/POS ...#start#end`` with start/end in seconds
(``0.0#0.0`` means the whole clip). A part annotation maps each of the six parts to
``{"action": ..., "text": ...}``; a part that does nothing is ``{"action": "idle", "text": "does nothing"}``.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from motion.core.errors import DataError
from motion.core.parts import PART_NAMES

IDLE = {"action": "idle", "text": "does nothing"}

PartAnnotations = dict[str, dict[str, dict[str, str]]]  # {seg_id: {part: {"action", "text"}}}


@dataclass(frozen=True)
class Caption:
    """One line of a HumanML3D caption file."""

    text: str
    tokens: str = ""
    start: float = 0.0  # seconds; 0 with end 0 means the whole clip
    end: float = 0.0

    def to_line(self) -> str:
        """Format as a HumanML3D caption line."""
        return f"{self.text}#{self.tokens}#{self.start:.1f}#{self.end:.1f}"


def parse_caption_line(line: str, path: str | Path = "<caption>") -> Caption:
    """Parse one ``caption#tokens#start#end`` line (NaN times become 0, as in HumanML3D loaders)."""
    fields = line.rstrip("\n").split("#")
    if len(fields) < 4 or not fields[0].strip():
        raise DataError(path, f"caption line is not 'caption#tokens#start#end': {line.strip()[:80]!r}",
                        "write one caption per line in HumanML3D's texts/<id>.txt format")

    def _time(value: str) -> float:
        try:
            t = float(value)
        except ValueError:
            raise DataError(path, f"caption time {value!r} is not a number", "use seconds such as 0.0") from None
        return 0.0 if math.isnan(t) else t

    return Caption(fields[0].strip(), fields[1].strip(), _time(fields[2]), _time(fields[3]))


def read_captions(path: str | Path) -> list[Caption]:
    """Read a HumanML3D ``texts/<id>.txt`` file (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "caption file is missing", "add texts/<id>.txt for every clip in index.csv")
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise DataError(path, "caption file is empty", "write at least one caption line")
    return [parse_caption_line(ln, path) for ln in lines]


def read_part_annotations(path: str | Path, fix: str) -> PartAnnotations:
    """Part annotations ``{seg_id: {part: {action, text}}}`` of a JSON file: the synthetic ground truth
    (``part_texts.json``) or LGTM's ``body_part_annotations.json``; ``fix`` names the stage that writes it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "part annotations are missing", fix)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(path, f"cannot be read as JSON ({type(e).__name__})", fix) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError(path, "is not {seg_id: {part: {action, text}}}", fix)
    return data


def format_captions(captions: list[Caption]) -> str:
    """Format captions as the contents of a ``texts/<id>.txt`` file."""
    return "".join(c.to_line() + "\n" for c in captions)


CAPTION_COLUMNS = ("motion_id", "caption_index", "caption", "tokens", "start", "end")


def write_caption_table(path: str | Path, captions: dict[str, list[Caption]]) -> None:
    """The captions of many clips as one table (``texts.parquet``): a row per caption line, ids sorted.

    It holds what the clips' ``texts/<id>.txt`` files would, as one file DVC hashes once; times are
    rounded to 0.1 s as a caption file writes them."""
    import pandas as pd

    from motion.core.io import write_parquet

    rows = [(motion_id, i, c.text, c.tokens, round(c.start, 1), round(c.end, 1))
            for motion_id in sorted(captions) for i, c in enumerate(captions[motion_id])]
    table = pd.DataFrame.from_records(rows, columns=list(CAPTION_COLUMNS))
    write_parquet(path, table.astype({"caption_index": "int64", "start": "float64", "end": "float64"}))


def read_caption_table(path: str | Path, fix: str = "run `dvc repro poses`") -> dict[str, list[Caption]]:
    """``{motion_id: [Caption, ...]}`` of a ``texts.parquet`` written by ``write_caption_table``."""
    from motion.core.io import read_table

    table = read_table(path, "caption table", CAPTION_COLUMNS, fix)
    out: dict[str, list[Caption]] = {}
    for row in table.sort_values(["motion_id", "caption_index"], kind="stable").itertuples(index=False):
        out.setdefault(str(row.motion_id), []).append(
            Caption(str(row.caption), str(row.tokens), float(row.start), float(row.end)))
    return out


_LR_WORDS = re.compile(r"\b(left|right|Left|Right|LEFT|RIGHT)\b")
_LR_SWAP = {"left": "right", "right": "left", "Left": "Right", "Right": "Left", "LEFT": "RIGHT", "RIGHT": "LEFT"}


def mirror_text(text: str) -> str:
    """Swap the words left and right, as HumanML3D does for the captions of mirrored (M) clips."""
    return _LR_WORDS.sub(lambda m: _LR_SWAP[m.group(0)], text)


def mirror_caption(caption: Caption) -> Caption:
    """The caption of the mirrored clip: left and right swapped in text and tokens."""
    return Caption(mirror_text(caption.text), mirror_text(caption.tokens), caption.start, caption.end)


def complete_part_annotation(annotation: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Fill missing parts with the idle default and order the parts canonically."""
    return {p: dict(annotation.get(p, IDLE)) for p in PART_NAMES}


def mirror_part_annotation(annotation: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Part annotation of the mirrored clip: left and right parts exchanged, texts mirrored."""
    swap = {"left_arm": "right_arm", "right_arm": "left_arm", "left_leg": "right_leg", "right_leg": "left_leg"}
    full = complete_part_annotation(annotation)
    return {p: {"action": full[swap.get(p, p)]["action"], "text": mirror_text(full[swap.get(p, p)]["text"])}
            for p in PART_NAMES}
