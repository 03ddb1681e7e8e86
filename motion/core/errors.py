"""One-line, actionable errors for bad input."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


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

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by state, not by constructor arguments (subclasses take others), so the error crosses a
        process pool's boundary intact."""
        return _rebuild_error, (type(self), self.args, dict(self.__dict__))


def _rebuild_error(cls: type[DataError], args: tuple[Any, ...], state: dict[str, Any]) -> DataError:
    """A DataError (or subclass) with ``args`` and attributes ``state``, without running its ``__init__``."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (API key, password, token) replaced by ``***``.

    The one redaction helper: apply it wherever remote text (an error body, a reply) enters a message,
    a log line, a report or a cache. Secrets shorter than 4 characters are ignored (they would mangle
    ordinary text and protect nothing).
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def one_line(error: BaseException) -> str:
    """An exception as one line of text (newlines folded)."""
    text = str(error) or type(error).__name__
    return " ".join(text.split())


def run_stage(name: str, fn: Callable[[], T], secrets: Iterable[str] = ()) -> T:
    """Run a stage's body; expected failures become ``sys.exit("<name>: <one line>")``.

    Expected: DataError (bad input or settings, already naming the file and the fix), OSError with a
    file name (missing, unreadable or full disk: a user path), UnicodeDecodeError (a user file in the
    wrong encoding). Anything else is a programming error and keeps its traceback. ``secrets`` are
    redacted from the message.
    """
    try:
        return fn()
    except DataError as err:
        message = one_line(err)
    except UnicodeDecodeError as err:
        message = (f"a file is not UTF-8 text ({err.reason} at byte {err.start}) -- fix: save it as UTF-8 "
                   f"(e.g. iconv -f latin1 -t utf-8)")
        source = getattr(err, "path", None)
        if source:
            message = f"{source}: {message}"
    except OSError as err:
        if not err.filename:
            raise
        where = f"{err.filename} -> {err.filename2}" if err.filename2 else str(err.filename)
        message = f"{where}: {err.strerror or type(err).__name__} -- fix: check the path and its permissions"
    sys.exit(f"{name}: {redact(message, secrets)}")
