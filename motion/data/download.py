"""Getting the raw data: resumable HTTP downloads, checksums, safe archive extraction, Drive assets.

AMASS archives are large (gigabytes) and sit behind a login, so a download resumes from a
``.part`` file with an HTTP ``Range`` request, retries transient failures with exponential
backoff, and is renamed into place only once its size and sha256 check out. Credentials come
from environment variables and are never printed. Archives are extracted member by member and
any member that would land outside the target folder (``..``, absolute paths, links pointing
out, device files) is refused. Non-motion files (LICENSE.txt, readme) are kept beside the data
they belong to; the poses stage reads only the ``.npz`` files that ``index.csv`` names.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import lzma
import os
import posixpath
import re
import shutil
import tarfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterator, Mapping
from urllib.parse import urlsplit

import requests
import urllib3
from tqdm import tqdm

from motion.data.amass import DATASET_ALIASES, HUMANACT12, read_index
from motion.core.errors import DataError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
STREAM_CHUNK_BYTES = 1 << 16
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
ARCHIVE_SUFFIXES = (".tar.bz2", ".tbz2", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar")
AUTH_MODES = ("none", "basic", "bearer", "cookie", "form")

# AMASS renamed some datasets after HumanML3D was built; index.csv uses the old folder names, so
# extracted folders are renamed to them (motion.data.amass owns the table; a name absent is unused).
HUMANML3D_DATASET_FOLDERS: dict[str, str] = {
    alias: name for name, aliases in DATASET_ALIASES.items() for alias in aliases}

SPLITS = ("train", "val", "test")
_TEXT_NAME = re.compile(r"^M?\d+\.txt$")
_NPY_NAME = re.compile(r"^[\w.-]+\.npy$")


# ----------------------------------------------------------------------------- credentials

@dataclass(frozen=True)
class Credentials:
    """How requests authenticate; secret values come from the environment and never print."""

    mode: str = "none"
    env_names: tuple[str, ...] = ()
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)

    def secrets(self) -> list[str]:
        """The secret values to scrub from any text shown to the user."""
        return [s for s in (self.username, self.password, self.token) if s]

    def request_kwargs(self) -> dict[str, Any]:
        """Method and the auth/headers/data arguments ``requests`` needs for this mode."""
        if self.mode == "basic":
            return {"method": "GET", "auth": (self.username, self.password)}
        if self.mode == "bearer":
            return {"method": "GET", "headers": {"Authorization": f"Bearer {self.token}"}}
        if self.mode == "cookie":
            return {"method": "GET", "headers": {"Cookie": self.token}}
        if self.mode == "form":  # AMASS's download.php takes a POSTed login form
            return {"method": "POST", "data": {"username": self.username, "password": self.password}}
        return {"method": "GET"}


NO_CREDENTIALS = Credentials()


def credentials_from_env(mode: str, username_env: str = "", password_env: str = "", token_env: str = "",
                         environ: Mapping[str, str] | None = None) -> Credentials:
    """Read the credentials an auth mode needs from the named environment variables."""
    environ = os.environ if environ is None else environ
    if mode not in AUTH_MODES:
        raise DataError("params.yaml", f"download.amass_remote.auth {mode!r} is unknown",
                        f"use one of {', '.join(AUTH_MODES)}")
    needed = {"none": (), "basic": (username_env, password_env), "form": (username_env, password_env),
              "bearer": (token_env,), "cookie": (token_env,)}[mode]
    for name in needed:
        if not name:
            raise DataError("params.yaml", f"auth mode {mode!r} needs an environment variable name that is empty",
                            "set download.amass_remote.username_env/password_env/token_env")
        if not environ.get(name):
            raise DataError(f"${name}", f"environment variable is not set (auth mode {mode!r})",
                            f"export {name}=... in the shell that runs the stage (never put it in params.yaml)")
    if mode in ("basic", "form"):
        return Credentials(mode, (username_env, password_env), environ[username_env], environ[password_env])
    if mode in ("bearer", "cookie"):
        return Credentials(mode, (token_env,), token=environ[token_env])
    return NO_CREDENTIALS


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def check_url(url: str) -> str:
    """Refuse URLs that carry credentials (user:password@host): those belong in env vars."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DataError("params.yaml", f"{url!r} is not an http(s) URL", "fix download.amass_remote.base_url")
    if parts.username or parts.password:
        raise DataError("params.yaml", "a download URL contains credentials (user:password@host)",
                        "remove them from the URL and set the env vars named in download.amass_remote")
    return url


def archive_url(base_url: str, name: str) -> str:
    """URL of one archive: ``base_url`` followed by its name (a ``/`` added unless it ends in / or =)."""
    joiner = "" if base_url.endswith(("/", "=")) else "/"
    return check_url(base_url + joiner + name)


# ----------------------------------------------------------------------------- checksums

def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str | Path, size: int | None = None, sha256: str | None = None) -> str:
    """Check a file's size and sha256 (either may be unknown); return its sha256 or raise DataError."""
    path = Path(path)
    actual_size = path.stat().st_size
    if actual_size == 0:
        raise DataError(path, "file is empty", "download it again")
    if size is not None and actual_size != size:
        raise DataError(path, f"size is {actual_size} bytes, expected {size}",
                        "the download is incomplete or the expected size in params.yaml is wrong")
    digest = sha256_file(path)
    if sha256 and digest != sha256.lower():
        raise DataError(path, f"sha256 mismatch: expected {sha256.lower()}, got {digest}",
                        "the file is corrupt or params.yaml lists the wrong checksum; rerun to download it again")
    return digest


# ----------------------------------------------------------------------------- HTTP download

class _Transient(Exception):
    """A failure worth retrying (dropped connection, timeout, HTTP 5xx/429)."""


def _part_size(part: Path) -> int:
    return part.stat().st_size if part.exists() else 0


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes a-b/N`` (or ``bytes */N``) header."""
    match = re.fullmatch(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", (header or "").strip())
    if not match:
        return None, None
    start = int(match[1]) if match[1] is not None else None
    total = int(match[2]) if match[2] != "*" else None
    return start, total


def _raise_for_status(response: requests.Response, url: str, credentials: Credentials, dest: Path) -> None:
    status = response.status_code
    if status in TRANSIENT_STATUS:
        raise _Transient(f"HTTP {status}")
    if status in (401, 403):
        names = ", ".join(f"${n}" for n in credentials.env_names) or "the credential env vars"
        raise DataError(url, f"the server refused access (HTTP {status}, auth mode {credentials.mode!r})",
                        f"check {names} and download.amass_remote.auth")
    if status in (404, 410):
        raise DataError(url, f"not found on the server (HTTP {status})",
                        "check download.amass_remote.base_url and the archive name")
    if status >= 400:
        raise DataError(url, f"the server answered HTTP {status}", "check the URL and try again later")
    content_type = response.headers.get("Content-Type", "")
    if content_type.startswith("text/html") and dest.suffix not in (".html", ".htm"):
        raise DataError(url, "the server sent an HTML page instead of the file (a login page?)",
                        "check the credentials and the auth mode (AMASS's download.php needs auth: form)")


def _fetch_once(session: requests.Session, url: str, part: Path, size: int | None, credentials: Credentials,
                timeout_s: float, progress: bool, dest: Path) -> None:
    """One request: append the rest of the file to ``part`` (from its current size) or start it over."""
    offset = _part_size(part)
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is not None and 0 < offset == size:
        return
    kwargs = credentials.request_kwargs()
    headers = {"Accept-Encoding": "identity", **kwargs.pop("headers", {})}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with session.request(url=url, headers=headers, stream=True, timeout=timeout_s, **kwargs) as response:
            if response.status_code == 416 and offset:
                _, total = _content_range(response.headers.get("Content-Range"))
                if total == offset:
                    return
                part.unlink()
                raise _Transient("the server could not resume the partial file; starting over")
            _raise_for_status(response, url, credentials, dest)
            if response.headers.get("Content-Encoding", "identity").lower() != "identity":
                raise DataError(url, "the server compresses the transfer, so byte ranges cannot be resumed",
                                "download the file by hand into download.amass_remote.download_dir")
            if offset and response.status_code == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != offset:
                    part.unlink()
                    raise _Transient(f"the server resumed at byte {start}, not {offset}; starting over")
                mode = "ab"
            else:  # the server ignored Range (or there was nothing to resume): start over
                offset, mode = 0, "wb"
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            if size is not None and total is not None and total != size:
                part.unlink(missing_ok=True)
                raise DataError(url, f"the server announces {total} bytes but params.yaml expects {size}",
                                "check the archive name or fix its size in download.amass_remote.archives")
            with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                              unit_divisor=1024, desc=dest.name, disable=not progress) as bar:
                # read1 hands over whatever arrived, so bytes before a dropped connection are kept
                while chunk := response.raw.read1(STREAM_CHUNK_BYTES):
                    f.write(chunk)
                    bar.update(len(chunk))
    except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException) as err:
        raise _Transient(type(err).__name__) from None
    received = _part_size(part)
    if total is not None and received < total:
        raise _Transient(f"the connection closed after {received} of {total} bytes")
    if total is not None and received > total:
        part.unlink()
        raise _Transient(f"received {received} bytes, more than the announced {total}; starting over")


def download_file(url: str, dest: str | Path, *, size: int | None = None, sha256: str | None = None,
                  credentials: Credentials = NO_CREDENTIALS, retries: int = 5, backoff_s: float = 1.0,
                  timeout_s: float = 60.0, progress: bool = True,
                  session: requests.Session | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part``, retrying, then verifying size and sha256.

    An existing ``dest`` that verifies is kept. On a checksum or size mismatch nothing is left
    behind and a DataError is raised; on too many failed retries the ``.part`` file is kept so a
    rerun resumes it.
    """
    check_url(url)
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    secrets = credentials.secrets()
    if dest.exists():
        try:
            verify_file(dest, size, sha256)
            log.info("%s: already downloaded", dest)
            return dest
        except DataError as err:
            log.warning("%s; downloading it again", redact(str(err), secrets))
            dest.unlink()
    own_session = session is None
    session = session or requests.Session()
    failures = 0
    try:
        while True:
            before = _part_size(part)
            try:
                _fetch_once(session, url, part, size, credentials, timeout_s, progress, dest)
                break
            except _Transient as err:
                failures = 0 if _part_size(part) > before else failures + 1
                if failures > retries:
                    raise DataError(dest, f"download failed {failures} times in a row ({redact(str(err), secrets)})",
                                    f"check the network and rerun: {part.name} is resumed") from None
                delay = backoff_s * 2 ** max(failures - 1, 0)
                log.warning("%s: %s; retrying in %.1f s", dest.name, redact(str(err), secrets), delay)
                time.sleep(delay)
    finally:
        if own_session:
            session.close()
    try:
        digest = verify_file(part, size, sha256)
    except DataError as err:
        part.unlink(missing_ok=True)
        raise DataError(dest, err.problem, "the download was deleted; rerun to fetch it again, "
                        "or correct its size/sha256 in params.yaml") from None
    os.replace(part, dest)
    if not sha256:
        log.info("%s: sha256 %s (add it to params.yaml to verify later downloads)", dest.name, digest)
    return dest


# ----------------------------------------------------------------------------- safe extraction

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


def _write_member(source: BinaryIO, dest: Path, archive: Path, member: str) -> None:
    if dest.exists() or dest.is_symlink():
        raise DataError(archive, f"member {member!r} would overwrite {dest.name} from another archive or folder",
                        "remove the duplicate archive (or dataset folder) from the input folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK_BYTES)


def _extract_tar(archive: Path, target: Path, rename: Mapping[str, str], progress: bool) -> list[PurePosixPath]:
    written: list[PurePosixPath] = []
    with open(archive, "rb") as raw, tqdm.wrapattr(raw, "read", total=archive.stat().st_size, unit="B",
                                                   unit_scale=True, unit_divisor=1024, desc=f"extract {archive.name}",
                                                   disable=not progress) as reader:
        with tarfile.open(fileobj=reader, mode="r|*") as tar:
            for member in tar:
                try:
                    rel = safe_member_path(member.name)
                    if rel is None:
                        continue
                    if member.isdev() or member.isfifo():
                        raise ValueError("is a device or pipe")
                    link = _link_inside(rel, member.linkname, member.issym()) if member.islnk() or member.issym() else None
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
                        raise _refuse(archive, member.name, f"is a hard link to {member.linkname!r}, which is not extracted")
                    with open(source, "rb") as f:
                        _write_member(f, dest, archive, member.name)
                    written.append(_renamed(rel, rename))
                elif member.isfile():
                    fileobj = tar.extractfile(member)
                    assert fileobj is not None
                    _write_member(fileobj, dest, archive, member.name)
                    written.append(_renamed(rel, rename))
    return written


def _extract_zip(archive: Path, target: Path, rename: Mapping[str, str], progress: bool) -> list[PurePosixPath]:
    written: list[PurePosixPath] = []
    with zipfile.ZipFile(archive) as zf:
        for info in tqdm(zf.infolist(), desc=f"extract {archive.name}", unit="file", disable=not progress):
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
                _write_member(source, dest, archive, info.filename)
            written.append(_renamed(rel, rename))
    return written


def extract_archive(archive: str | Path, target: str | Path, rename: Mapping[str, str] | None = None,
                    progress: bool = True) -> list[PurePosixPath]:
    """Extract a tar (.tar.bz2, .tar.gz, ...) or zip archive into ``target``, refusing escaping members.

    ``rename`` maps top-level folder names (e.g. AMASS's new dataset names to HumanML3D's).
    Returns the relative paths of the files written.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    rename = rename or {}
    try:
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, target, rename, progress)
        return _extract_tar(archive, target, rename, progress)
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


# ----------------------------------------------------------------------------- AMASS tree

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


def _iter_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
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
                     progress: bool = True) -> dict[str, int]:
    """Extract archives and copy dataset folders into one AMASS tree; return the file count per dataset."""
    target = Path(target)
    rename = {**HUMANML3D_DATASET_FOLDERS, **(rename or {})}
    written: list[PurePosixPath] = []
    for archive in archives:
        written += extract_archive(archive, target, rename, progress)
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
    return _first_existing([root / "pose_data" / "humanact12.zip", root / "humanact12.zip",
                            root / "pose_data" / HUMANACT12])


def bring_humanact12(source: str | Path, target: str | Path) -> int:
    """Copy HumanAct12's .npy joint files (zip or folder) to ``target/humanact12/humanact12/`` as index.csv names them."""
    source, dest = Path(source), Path(target) / HUMANACT12 / HUMANACT12
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    if source.is_dir():
        for path in sorted(source.rglob("*.npy")):
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
        raise DataError(source, f"is not a readable zip ({err})", "download humanact12.zip from HumanML3D again") from None
    return count


# ----------------------------------------------------------------------------- HumanML3D annotations

def _first_existing(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.exists()), None)


def _copy_texts(texts: Path, out: Path) -> set[str]:
    """Copy HumanML3D caption files (from a texts/ folder or texts.zip) into ``out``; return their ids."""
    out.mkdir(parents=True, exist_ok=True)
    ids: set[str] = set()
    if texts.is_dir():
        for path in sorted(texts.iterdir()):
            if _TEXT_NAME.match(path.name):
                shutil.copyfile(path, out / path.name)
                ids.add(path.stem)
        return ids
    try:
        with zipfile.ZipFile(texts) as zf:
            for info in zf.infolist():
                name = PurePosixPath(info.filename).name
                if info.is_dir() or not _TEXT_NAME.match(name) or "__MACOSX" in info.filename:
                    continue
                with zf.open(info) as source, open(out / name, "wb") as dest:
                    shutil.copyfileobj(source, dest)
                ids.add(Path(name).stem)
    except zipfile.BadZipFile as err:
        raise DataError(texts, f"is not a readable zip ({err})", "download texts.zip from HumanML3D again") from None
    return ids


def prepare_annotations(humanml3d_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """Bring HumanML3D's index.csv, caption texts and train/val/test splits into ``out`` (CONTRACT layout).

    Looks in ``humanml3d_dir`` and its ``HumanML3D/`` subfolder (the repository's layout). Splits
    keep original ids only (mirrored ``M`` ids are added by later stages).
    """
    root, out = Path(humanml3d_dir), Path(out)
    if not str(humanml3d_dir) or not root.is_dir():
        raise DataError(root, "HumanML3D folder does not exist",
                        "clone github.com/EricGuo5513/HumanML3D and set download.humanml3d_dir to it")
    places = [root, root / "HumanML3D"]
    index = _first_existing([p / "index.csv" for p in places])
    texts = _first_existing([p / "texts" for p in places] + [p / "texts.zip" for p in places])
    if index is None:
        raise DataError(root, "has no index.csv", "point download.humanml3d_dir at a HumanML3D checkout")
    if texts is None:
        raise DataError(root, "has neither texts/ nor texts.zip", "point download.humanml3d_dir at a HumanML3D checkout")
    index_ids = [clip.clip_id for clip in read_index(index)]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(index, out / "index.csv")
    text_ids = _copy_texts(texts, out / "texts")
    known = set(index_ids)
    counts: dict[str, int] = {}
    (out / "splits").mkdir(exist_ok=True)
    for split in SPLITS:
        path = _first_existing([p / f"{split}.txt" for p in places] + [p / "splits" / f"{split}.txt" for p in places])
        if path is None:
            raise DataError(root, f"has no {split}.txt", "point download.humanml3d_dir at a HumanML3D checkout")
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        ids = [i for i in ids if i and not i.startswith("M")]
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise DataError(path, f"{len(unknown)} ids are not in index.csv (first: {unknown[0]})",
                            "use index.csv and the split files of the same HumanML3D version")
        uncaptioned = [i for i in ids if i not in text_ids]
        if uncaptioned:
            raise DataError(texts, f"{len(uncaptioned)} {split} ids have no caption file (first: {uncaptioned[0]})",
                            "use the complete texts.zip of HumanML3D")
        (out / "splits" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        counts[split] = len(ids)
    return {"index_rows": len(index_ids), "texts": len(text_ids), "splits": counts}


# ----------------------------------------------------------------------------- Drive assets (gdown)

def _cached_asset(folder: Path) -> Path | None:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.endswith(".part")) if folder.is_dir() else []
    return files[0] if len(files) == 1 else None


def fetch_asset(name: str, item: Mapping[str, Any], cache_dir: str | Path, target: str | Path,
                retries: int = 3, progress: bool = True) -> dict[str, Any]:
    """Fetch one published asset with gdown (Drive id, or an explicit ``url``), check it, place it in ``target/name``.

    The download is cached in ``cache_dir/name`` (resumed when interrupted); a file placed there by
    hand is used as it is. Checks: non-empty, sha256 when given, the archive opens; ``extract``
    unpacks a zip/tar archive safely, otherwise the file is copied.
    """
    import gdown  # imported here: only this optional step needs it

    url, gdrive_id = str(item.get("url") or ""), str(item.get("gdrive_id") or "")
    sha256, extract = str(item.get("sha256") or ""), bool(item.get("extract", False))
    if not url and not gdrive_id:
        raise DataError("params.yaml", f"download.assets.items.{name} has neither gdrive_id nor url",
                        "fill in its Google Drive id (or remove the item)")
    folder = Path(cache_dir) / name
    path = _cached_asset(folder)
    if path is not None and sha256 and sha256_file(path) != sha256.lower():
        log.warning("%s: cached %s fails its sha256; downloading it again", name, path.name)
        path.unlink()
        path = None
    if path is None:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            result = gdown.download(url=url or None, id=None if url else gdrive_id, output=str(folder) + os.sep,
                                    quiet=not progress, resume=True, use_cookies=False, retries=retries)
        except Exception as err:  # gdown raises its own, requests' and OSError types
            message = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise DataError(f"asset {name}", f"gdown could not fetch {url or gdrive_id} ({type(err).__name__}: {message})",
                            f"check that the file is public, or download it by hand into {folder}/") from None
        if not result:
            raise DataError(f"asset {name}", f"gdown returned nothing for {url or gdrive_id}",
                            f"download it by hand into {folder}/")
        path = Path(result)
    try:
        digest = verify_file(path, None, sha256 or None)
        check_archive_opens(path)
        if extract and not (zipfile.is_zipfile(path) or tarfile.is_tarfile(path)):
            raise DataError(path, "is not a zip or tar archive but the item has extract: true",
                            f"set download.assets.items.{name}.extract to false")
    except DataError:
        path.unlink(missing_ok=True)
        raise
    dest = Path(target) / name
    if extract:
        files = [str(p) for p in sorted(extract_archive(path, dest, progress=progress))]
    else:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / path.name)
        files = [path.name]
    return {"gdrive_id": gdrive_id, "url": url, "file": path.name, "size": path.stat().st_size,
            "sha256": digest, "extracted": extract, "files": len(files)}
