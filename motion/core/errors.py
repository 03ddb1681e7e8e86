"""One-line, actionable errors for bad input."""
from __future__ import annotations

from pathlib import Path


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
