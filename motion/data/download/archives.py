"""Safe extraction of tar and zip archives, and a check that an archive opens.

Archives are extracted member by member and any member that would land outside the target folder
(``..``, absolute paths, links pointing out, device files) is refused. Non-motion files
(LICENSE.txt, readme) are kept beside the data they belong to; the poses stage reads only the
``.npz`` files that ``index.csv`` names.
"""
from __future__ import annotations

import json
import lzma
import os
import posixpath
import re
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from motion.core.errors import DataError
from motion.data.download.http import CHUNK_BYTES

ARCHIVE_SUFFIXES = (".tar.bz2", ".tbz2", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar")


def is_archive(path: str | Path) -> bool:
    """Whether a path names a tar or zip archive by its suffix."""
    name = str(path).lower()
    return name.endswith(ARCHIVE_SUFFIXES) or name.endswith(".zip")


def safe_member_path(name: str) -> PurePosixPath | None:
    """Archive member name as a relative path inside the target, None for the root; ValueError if it escapes."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ValueError("is an absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise ValueError("goes up a folder ('..')")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


def _link_inside(member_rel: PurePosixPath, linkname: str, symbolic: bool) -> PurePosixPath:
    """Archive-relative path a link points to; ValueError when it points outside the target."""
    if linkname.startswith("/") or re.match(r"^[A-Za-z]:", linkname):
        raise ValueError(f"links to the absolute path {linkname!r}")
    joined = posixpath.join(str(member_rel.parent), linkname) if symbolic else linkname
    normal = posixpath.normpath(joined)
    if normal == ".." or normal.startswith("../"):
        raise ValueError(f"links outside the target folder ({linkname!r})")
    return PurePosixPath(normal)


def _renamed(rel: PurePosixPath, rename: Mapping[str, str]) -> PurePosixPath:
    head, *rest = rel.parts
    return PurePosixPath(rename.get(head, head), *rest)


def _refuse(archive: Path, member: str, reason: str) -> DataError:
    return DataError(archive, f"member {member!r} {reason}; refusing to extract it",
                     "the archive is damaged or unsafe: download it again from the official source")


def _check_inside(target: Path, dest: Path, archive: Path, member: str) -> None:
    root = target.resolve()
    if root != dest.resolve() and root not in dest.resolve().parents:
        raise _refuse(archive, member, "would be written outside the target folder through a link")


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what one archive may extract to (a tar or zip bomb stops with a DataError)."""

    max_members: int  # files, folders and links
    max_bytes: int  # total size of the extracted files


class _Budget:
    """Members and bytes left to one archive's extraction."""

    def __init__(self, archive: Path, limits: ArchiveLimits | None) -> None:
        self.archive, self.limits = archive, limits
        self.members = self.bytes = 0

    def _fail(self, what: str, limit: int) -> DataError:
        return DataError(self.archive, f"extracts to more than {limit} {what}; refusing it (an archive bomb?)",
                         "check the archive comes from the official source, or raise the download archive limits "
                         "in params.yaml")

    def member(self) -> None:
        self.members += 1
        if self.limits is not None and self.members > self.limits.max_members:
            raise self._fail("members", self.limits.max_members)

    def add_bytes(self, count: int) -> None:
        self.bytes += count
        if self.limits is not None and self.bytes > self.limits.max_bytes:
            raise self._fail("bytes", self.limits.max_bytes)


def _write_member(source: BinaryIO, dest: Path, archive: Path, member: str, budget: _Budget) -> None:
    if dest.exists() or dest.is_symlink():
        raise DataError(archive, f"member {member!r} would overwrite {dest.name} from another archive or folder",
                        "remove the duplicate archive (or dataset folder) from the input folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        while chunk := source.read(CHUNK_BYTES):
            budget.add_bytes(len(chunk))
            out.write(chunk)


def _extract_tar(archive: Path, target: Path, rename: Mapping[str, str], progress: bool,
                 budget: _Budget) -> list[PurePosixPath]:
    written: list[PurePosixPath] = []
    with open(archive, "rb") as raw, tqdm.wrapattr(raw, "read", total=archive.stat().st_size, unit="B",
                                                   unit_scale=True, unit_divisor=1024, desc=f"extract {archive.name}",
                                                   disable=not progress) as reader:
        with tarfile.open(fileobj=reader, mode="r|*") as tar:
            for member in tar:
                budget.member()
                try:
                    rel = safe_member_path(member.name)
                    if rel is None:
                        continue
                    if member.isdev() or member.isfifo():
                        raise ValueError("is a device or pipe")
                    is_link = member.islnk() or member.issym()
                    link = _link_inside(rel, member.linkname, member.issym()) if is_link else None
                except ValueError as why:
                    raise _refuse(archive, member.name, str(why)) from None
                dest = target / _renamed(rel, rename)
                _check_inside(target, dest.parent, archive, member.name)
                if member.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                elif member.issym():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(member.linkname, dest)
                    _check_inside(target, dest, archive, member.name)
                elif member.islnk():
                    source = target / _renamed(link, rename)
                    if not source.is_file():
                        raise _refuse(archive, member.name,
                                      f"is a hard link to {member.linkname!r}, which is not extracted")
                    with open(source, "rb") as f:
                        _write_member(f, dest, archive, member.name, budget)
                    written.append(_renamed(rel, rename))
                elif member.isfile():
                    fileobj = tar.extractfile(member)
                    assert fileobj is not None
                    _write_member(fileobj, dest, archive, member.name, budget)
                    written.append(_renamed(rel, rename))
    return written


def _extract_zip(archive: Path, target: Path, rename: Mapping[str, str], progress: bool,
                 budget: _Budget) -> list[PurePosixPath]:
    written: list[PurePosixPath] = []
    with zipfile.ZipFile(archive) as zf:
        for info in tqdm(zf.infolist(), desc=f"extract {archive.name}", unit="file", disable=not progress):
            budget.member()
            try:
                rel = safe_member_path(info.filename)
            except ValueError as why:
                raise _refuse(archive, info.filename, str(why)) from None
            if rel is None:
                continue
            dest = target / _renamed(rel, rename)
            _check_inside(target, dest.parent, archive, info.filename)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as source:
                _write_member(source, dest, archive, info.filename, budget)
            written.append(_renamed(rel, rename))
    return written


def extract_archive(archive: str | Path, target: str | Path, rename: Mapping[str, str] | None = None,
                    progress: bool = True, limits: ArchiveLimits | None = None) -> list[PurePosixPath]:
    """Extract a tar (.tar.bz2, .tar.gz, ...) or zip archive into ``target``, refusing escaping members.

    ``rename`` maps top-level folder names (e.g. AMASS's new dataset names to HumanML3D's).
    ``limits`` bounds the member count and the extracted bytes (None: unbounded).
    Returns the relative paths of the files written.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    rename = rename or {}
    budget = _Budget(archive, limits)
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, target, rename, progress, budget)
        return _extract_tar(archive, target, rename, progress, budget)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as err:
        raise DataError(archive, f"cannot be read as an archive ({type(err).__name__}: {err})",
                        "the file is truncated or corrupt: delete it and download it again") from None
    except OSError as err:
        if err.errno not in (None, 0):
            raise  # a real file-system problem (disk full, permissions), not a corrupt archive
        raise DataError(archive, f"cannot be decompressed ({err})",
                        "the file is truncated or corrupt: delete it and download it again") from None


def check_archive_opens(path: str | Path) -> None:
    """Read every member of a zip/tar archive (or parse a .json file); DataError if it does not open."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise DataError(path, f"zip member {bad!r} is corrupt", "delete the file and download it again")
        elif path.suffix.lower() == ".json":
            with open(path, encoding="utf-8") as f:
                json.load(f)
        elif tarfile.is_tarfile(path):
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if member.isfile():
                        fileobj = tar.extractfile(member)
                        assert fileobj is not None
                        while fileobj.read(CHUNK_BYTES):
                            pass
        elif is_archive(path):
            raise DataError(path, "is named like an archive but is not a zip or tar file",
                            "delete it and download it again")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, ValueError) as err:
        raise DataError(path, f"does not open ({type(err).__name__}: {err})",
                        "delete the file and download it again") from None
