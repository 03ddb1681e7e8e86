"""Resumable, verified HTTP downloads with credentials from the environment.

AMASS archives are large (gigabytes) and sit behind a login, so a download resumes from a
``.part`` file with an HTTP ``Range`` request, retries transient failures with exponential
backoff, and is renamed into place only once its size and sha256 check out. Credentials come
from environment variables and are never printed.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from tqdm import tqdm

from motion.core.io import sha256_file
from motion.core.errors import DataError, redact

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
STREAM_CHUNK_BYTES = 1 << 16
# A transfer that brings fewer bytes than this in a window of timeout_s seconds is stalled (a server
# dripping bytes would otherwise keep one request alive for ever); it is retried, resuming the .part file.
MIN_BYTES_PER_WINDOW = 1 << 16
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
AUTH_MODES = ("none", "basic", "bearer", "cookie", "form")


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


# ----------------------------------------------------------------------------- download

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


def _open(session: requests.Session, timeout_s: float, **request: Any) -> requests.Response:
    """``session.request(stream=True)`` whose connect, status line and headers all arrive within ``timeout_s``.

    requests' own timeout bounds each socket read, so headers dripped a byte at a time never time out;
    the request runs in a daemon thread that is abandoned at the deadline."""
    box: dict[str, Any] = {}

    def send() -> None:
        try:
            box["response"] = session.request(stream=True, timeout=timeout_s, **request)
        except BaseException as error:  # handed to the caller's thread
            box["error"] = error

    worker = threading.Thread(target=send, name="http-open", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise _Transient(f"no response headers within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box["response"]


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
        with _open(session, timeout_s, url=url, headers=headers, **kwargs) as response:
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
                window_start, window_bytes = time.monotonic(), 0
                while chunk := response.raw.read1(STREAM_CHUNK_BYTES):
                    f.write(chunk)
                    bar.update(len(chunk))
                    window_bytes += len(chunk)
                    elapsed = time.monotonic() - window_start
                    if elapsed >= timeout_s:
                        if window_bytes < MIN_BYTES_PER_WINDOW:
                            raise _Transient(f"stalled: {window_bytes} bytes in {elapsed:.1f} s")
                        window_start, window_bytes = time.monotonic(), 0
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
                progressed = _part_size(part) - before >= MIN_BYTES_PER_WINDOW  # a drip is no progress
                failures = 0 if progressed else failures + 1
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
