"""Atomic file output: everything is written to a temporary file or folder, then renamed.

A crash or Ctrl-C never leaves a half-written output behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from motion.core.workspace import clean_stale_temps


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole, else it is deleted.

    Temporaries are named after this process (``.<name>.<pid>-<random>.tmp``), so the next run removes
    those of a killed run (``clean_stale_temps``) and leaves a live writer's alone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)  # what a killed earlier run left behind
    tmp_path = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent))
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o755)  # mkdtemp makes 0700 folders
        if path.exists():
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp_path, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            shutil.rmtree(tmp_path)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """Save one array as .npy atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """Write JSON atomically (sorted keys, so reruns give identical bytes)."""
    write_text(path, json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n")


def write_parquet(path: str | Path, frame: pandas.DataFrame) -> None:  # noqa: F821
    """Write a pandas DataFrame as Parquet atomically."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def read_table(path: str | Path, what: str, columns: Iterable[str], fix: str) -> pandas.DataFrame:  # noqa: F821
    """A Parquet table that must hold ``columns``; missing, unreadable or short of a column, it is a one-line
    ``DataError`` naming the file, ``what`` it is and ``fix``."""
    import pandas as pd

    from motion.core.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} is missing", fix)
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise DataError(path, f"cannot be read as parquet ({type(e).__name__})", fix) from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(path, f"columns {missing} are missing", fix)
    return table


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles only built-in data (lists, dicts, strings, numbers): any class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused {module}.{name}: only plain data is allowed")


def load_plain_pickle(path: str | Path) -> Any:
    """A pickle file holding plain data (e.g. T2M's GloVe word lists), read without running any code from it.

    A file that names a class or function (the way a crafted pickle runs code) is a one-line DataError.
    """
    from motion.core.errors import DataError

    try:
        with open(path, "rb") as f:
            return _PlainUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise DataError(path, f"not a plain-data pickle ({err})", "use the original files of the T2M release") from None


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
