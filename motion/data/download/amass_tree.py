"""One AMASS tree under HumanML3D's dataset folder names, from archives, extracted folders and HumanAct12."""
from __future__ import annotations

import errno
import os
import re
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from motion.core.errors import DataError
from motion.data.amass import DATASET_ALIASES, HUMANACT12
from motion.data.download.archives import ARCHIVE_SUFFIXES, ArchiveLimits, extract_archive
from motion.data.download.http import CHUNK_BYTES
from motion.data.download.humanml3d import first_existing

# AMASS renamed some datasets after HumanML3D was built; index.csv uses the old folder names, so
# extracted folders are renamed to them (motion.data.amass owns the table; a name absent is unused).
HUMANML3D_DATASET_FOLDERS: dict[str, str] = {
    alias: name for name, aliases in DATASET_ALIASES.items() for alias in aliases}

_NPY_NAME = re.compile(r"^[\w.-]+\.npy$")


def find_amass_inputs(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """Archives and already-extracted dataset folders (holding .npz files) directly inside ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "AMASS input folder does not exist",
                        "set download.amass_local.archive_dir to the folder with the AMASS SMPL+H G archives")
    archives = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES))
    datasets = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and next(p.rglob("*.npz"), None) is not None)
    if not archives and not datasets:
        raise DataError(folder, "holds no AMASS archives (.tar.bz2) and no dataset folders with .npz files",
                        "download the 'SMPL+H G' archives from amass.is.tue.mpg.de into this folder")
    return archives, datasets


def check_link_inside(path: Path, root: Path) -> None:
    """DataError when ``path`` is a symbolic link whose target lies outside ``root`` (as archive links are)."""
    if not path.is_symlink():
        return
    real, top = path.resolve(), root.resolve()
    if real != top and top not in real.parents:
        raise DataError(path, f"is a link to {os.readlink(path)!r}, outside the dataset folder {root}; refusing it",
                        "replace the link by the file itself (extracted datasets must not point elsewhere)")


def _iter_files(folder: Path) -> Iterator[Path]:
    """Files below ``folder`` (sorted); links that point outside it are refused."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in dirs:
            check_link_inside(Path(root) / name, folder)
        for name in sorted(files):
            check_link_inside(Path(root) / name, folder)
            yield Path(root) / name


def copy_dataset_folder(source: str | Path, target: str | Path, rename: Mapping[str, str] | None = None,
                        link: bool = True) -> list[PurePosixPath]:
    """Copy (hard-link when possible) an extracted dataset folder into ``target`` under its HumanML3D name."""
    source, target = Path(source), Path(target)
    name = (rename or {}).get(source.name, source.name)
    written: list[PurePosixPath] = []
    for path in _iter_files(source):
        rel = PurePosixPath(name, *path.relative_to(source).parts)
        dest = target / rel
        if dest.exists():
            raise DataError(path, f"would overwrite {rel} from another archive or folder",
                            "remove the duplicate dataset from the input folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            if not link:
                raise OSError(errno.EXDEV, "copy requested")
            os.link(path, dest)
        except OSError:
            shutil.copyfile(path, dest)
        written.append(rel)
    return written


def build_amass_tree(archives: list[Path], folders: list[Path], target: str | Path,
                     rename: Mapping[str, str] | None = None, link: bool = True,
                     progress: bool = True, limits: ArchiveLimits | None = None) -> dict[str, int]:
    """Extract archives and copy dataset folders into one AMASS tree; return the file count per dataset.

    ``limits`` bounds each archive's member count and extracted size (None: unbounded)."""
    target = Path(target)
    rename = {**HUMANML3D_DATASET_FOLDERS, **(rename or {})}
    written: list[PurePosixPath] = []
    for archive in archives:
        written += extract_archive(archive, target, rename, progress, limits)
    for folder in folders:
        written += copy_dataset_folder(folder, target, rename, link)
    counts: dict[str, int] = {}
    for rel in written:
        if rel.suffix == ".npz":
            counts[rel.parts[0]] = counts.get(rel.parts[0], 0) + 1
    if not counts:
        raise DataError(target, "no .npz motion files came out of the AMASS inputs",
                        "use the 'SMPL+H G' archives of AMASS (they hold <Dataset>/<subject>/*_poses.npz)")
    return dict(sorted(counts.items()))


def find_humanact12(humanml3d_dir: str | Path) -> Path | None:
    """HumanML3D's HumanAct12 joint files: ``pose_data/humanact12.zip`` or its extracted folder, if present."""
    root = Path(humanml3d_dir)
    return first_existing([root / "pose_data" / "humanact12.zip", root / "humanact12.zip",
                            root / "pose_data" / HUMANACT12])


def bring_humanact12(source: str | Path, target: str | Path) -> int:
    """Copy HumanAct12's .npy joint files (zip or folder) to ``target/humanact12/humanact12/``, as index.csv
    names them; returns how many were copied."""
    source, dest = Path(source), Path(target) / HUMANACT12 / HUMANACT12
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    if source.is_dir():
        for path in sorted(source.rglob("*.npy")):
            check_link_inside(path, source)
            if _NPY_NAME.match(path.name) and not (dest / path.name).exists():
                shutil.copyfile(path, dest / path.name)
                count += 1
        return count
    try:
        with zipfile.ZipFile(source) as zf:
            for info in zf.infolist():
                name = PurePosixPath(info.filename).name  # only the base name is used: nothing can escape
                if info.is_dir() or "__MACOSX" in info.filename or not _NPY_NAME.match(name):
                    continue
                with zf.open(info) as member, open(dest / name, "wb") as out:
                    shutil.copyfileobj(member, out, CHUNK_BYTES)
                count += 1
    except zipfile.BadZipFile as err:
        raise DataError(source, f"is not a readable zip ({err})",
                        "download humanact12.zip from HumanML3D again") from None
    return count
