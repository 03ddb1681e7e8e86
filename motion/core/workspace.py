"""Guards of the workspace: where outputs may go, stale temporary folders, one writer at a time.

A stage replaces its output folders whole (``motion.core.io.atomic_dir``), so a wrong output path in
``params.yaml`` would delete whatever lives there. :func:`check_output_paths` refuses such settings
before anything touches the disk. :func:`clean_stale_temps` removes the temporary folders a killed
stage left beside its output, and :func:`workspace_lock` keeps a second writer (another flow in the
same workspace) from replacing outputs while a stage runs.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from motion.core.errors import DataError

LOCK_NAME = ".motion.lock"
PROTECTED_FOLDERS = (".git", ".dvc")  # never an output, whatever git says


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved)."""
    return path == folder or folder in path.parents


def _resolved(root: Path, value: str) -> Path:
    path = Path(value)
    return (path if path.is_absolute() else root / path).resolve()


def tracked_files(root: Path) -> list[Path] | None:
    """Absolute paths of the files git tracks in ``root``; None when ``root`` is not a git checkout."""
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [(root / name).resolve() for name in os.fsdecode(listing).split("\0") if name]


def check_output_paths(paths: Mapping[str, str], cache: str, root: Path, *,
                       persistent: Mapping[str, str] | None = None, in_place: Collection[str] = (),
                       where: str = "paths") -> None:
    """Refuse output locations that a stage's whole-folder replacement would turn into data loss.

    ``paths``: output key -> location (relative to ``root`` or absolute); a key whose value is ``cache``
    itself (``paths.cache``) is the cache, not an output. ``cache``: the persistent cache folder.
    ``persistent``: other kept folders (download folders) by dotted key. ``in_place``: keys whose files
    are written one by one beside git-tracked files (``metrics``), so only the workspace checks apply.
    Each location must lie strictly inside the workspace (not the root, ``.git`` or ``.dvc``), must not
    overlap another output, the cache, a persistent folder or any git-tracked file. Raises a one-line
    DataError naming ``params.yaml`` and the key.
    """
    root = Path(root).resolve()
    keep = {"cache": _resolved(root, cache)}
    keep.update({key: _resolved(root, value) for key, value in (persistent or {}).items()})
    outputs: dict[str, Path] = {}
    for key, value in paths.items():
        if not isinstance(value, str) or not value.strip():
            raise DataError("params.yaml", f"{where}.{key} is {value!r}, not a folder path",
                            f"set {where}.{key} to a folder inside the workspace, e.g. data/{key}")
        location = _resolved(root, value)
        if key == "cache" and location == keep["cache"]:
            continue
        outputs[key] = location
    tracked = tracked_files(root)
    for key, location in outputs.items():
        name = f"{where}.{key}"
        if location == root or location in root.parents:
            raise DataError("params.yaml", f"{name} ({paths[key]}) is the workspace root or above it; "
                            "the stage would replace the whole workspace", f"set {name} to a folder under data/")
        if not _inside(location, root):
            raise DataError("params.yaml", f"{name} ({paths[key]}) is outside the workspace {root}",
                            f"set {name} to a folder under data/ (outputs are replaced whole)")
        for folder in PROTECTED_FOLDERS:
            if _inside(location, root / folder) or _inside(root / folder, location):
                raise DataError("params.yaml", f"{name} ({paths[key]}) overlaps {folder}/",
                                f"set {name} to a folder under data/")
        for other, kept in keep.items():
            if _inside(location, kept) or _inside(kept, location):
                raise DataError("params.yaml", f"{name} ({paths[key]}) overlaps the persistent folder of {other} "
                                f"({kept.relative_to(root) if _inside(kept, root) else kept}); the stage would wipe it",
                                f"give {name} a folder of its own under data/")
        if tracked is not None and key not in in_place:
            hit = next((f for f in tracked if _inside(f, location)), None)
            if hit is not None:
                raise DataError("params.yaml", f"{name} ({paths[key]}) holds the git-tracked file "
                                f"{hit.relative_to(root)}; the stage would delete it",
                                f"set {name} to a folder under data/ that git does not track")
    keys = list(outputs)
    for i, key in enumerate(keys):
        for other in keys[i + 1:]:
            if _inside(outputs[key], outputs[other]) or _inside(outputs[other], outputs[key]):
                raise DataError("params.yaml", f"{where}.{key} ({paths[key]}) and {where}.{other} ({paths[other]}) "
                                "overlap; a stage would replace the other's output",
                                "give each output a folder of its own")


# ----------------------------------------------------------------------------- stale temporaries

_TEMP_PID = re.compile(r"^(\d+)(?:-[a-z0-9_]+\.tmp|\.old)$")  # .<name>.<pid>-<random>.tmp, .<name>.<pid>.old
_LEGACY_TEMP = re.compile(r"^(?:[a-z0-9_]{8}\.tmp|old)$")  # earlier versions: .<name>.<random>.tmp, .<name>.old


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temporary folders and files a killed writer of ``path`` left beside it; return them.

    ``atomic_dir`` names its temporaries ``.<name>.<pid>-<random>.tmp`` (and ``.<name>.<pid>.old``);
    those whose process is gone are removed, as are older unnamed ones (``.<name>.<random>.tmp``).
    Temporaries of a live process (another writer) are left alone.
    """
    path = Path(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    prefix = f".{path.name}."
    for entry in path.parent.iterdir():
        if not entry.name.startswith(prefix) or not entry.name.endswith((".tmp", ".old")):
            continue
        middle = entry.name[len(prefix):]
        match = _TEMP_PID.match(middle)
        if match:
            if _alive(int(match.group(1))):
                continue
        elif not _LEGACY_TEMP.match(middle):
            continue  # another output's temporaries (e.g. of ``<name>.b``)
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


# ----------------------------------------------------------------------------- one writer at a time

class WorkspaceBusy(DataError):
    """Another process holds the workspace lock."""


@contextlib.contextmanager
def exclusive_lock(lock_path: str | Path, holder: str, wait_s: float) -> Iterator[Path]:
    """Hold an exclusive ``fcntl`` lock on ``lock_path`` while the body runs.

    A second holder waits up to ``wait_s`` seconds (0: refuse at once), then raises a one-line
    WorkspaceBusy naming the current holder (``pid N (holder)``). The lock is released when the body
    ends or the process dies, however it dies; the file itself stays (it holds no state).
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+", encoding="utf-8")
    try:
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    current = handle.read().strip() or "another process"
                    raise WorkspaceBusy(lock_path, f"{holder}: in use by {current}",
                                        "wait for the other run to finish (one flow per workspace), "
                                        "or use a second clone") from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({holder})\n")
        handle.flush()
        yield lock_path
    finally:
        handle.close()  # closing releases the flock


def workspace_lock(root: str | Path, holder: str, wait_s: float) -> contextlib.AbstractContextManager[Path]:
    """The lock of a whole workspace (``<root>/.motion.lock``): one flow per workspace.

    Take it in the process that runs a whole pipeline (the Prefect flow, a wrapper around ``dvc repro``);
    stages it starts take :func:`output_lock` instead, so that they can still run side by side."""
    return exclusive_lock(Path(root) / LOCK_NAME, holder, wait_s)


def output_lock(output: str | Path, holder: str, wait_s: float) -> contextlib.AbstractContextManager[Path]:
    """The lock of one output folder (``.<name>.lock`` beside it): one writer per output.

    Take it around a stage's whole write of that output (``atomic_dir``), so that two writers never
    swap the same folder at once."""
    output = Path(output)
    return exclusive_lock(output.with_name(f".{output.name}.lock"), holder, wait_s)
