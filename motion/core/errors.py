"""One-line, actionable errors for bad input."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


class DataError(Exception):
    """Bad input data: the message names the file, what is wrong, and how to fix it, on one line."""

    def __init__(self, path: str | Path, problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        message = f"{self.path}: {problem}"
        if fix:
            message += f" -- fix: {fix}"
        super().__init__(message.replace("\n", " "))


def check_section(section: object, names: Iterable[str], where: str, others: bool = False) -> dict[str, Any]:
    """``section`` as a dict holding every key of ``names`` (and no other unless ``others``); otherwise a
    one-line DataError naming ``where`` (e.g. ``split_texts.llm``) and the missing or unknown keys."""
    if not isinstance(section, dict):
        raise DataError("params.yaml", f"{where} is {type(section).__name__}, not a mapping", f"write {where} as keys")
    names = list(names)
    missing = [n for n in names if n not in section]
    unknown = [] if others else sorted(set(section) - set(names))
    if missing:
        raise DataError("params.yaml", f"{where} misses {', '.join(missing)}",
                        "add them (see the repository's params.yaml)")
    if unknown:
        raise DataError("params.yaml", f"{where} has unknown keys {', '.join(unknown)}",
                        f"remove or correct them; {where} takes {', '.join(names)}")
    return section
