"""Published assets (LGTM's part annotations, checkpoints) fetched from Google Drive with gdown."""
from __future__ import annotations

import logging
import os
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motion.core.errors import DataError
from motion.data.download.archives import check_archive_opens, extract_archive
from motion.data.download.http import sha256_file, verify_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssetItem:
    """One published asset: a Google Drive id, or an explicit ``url`` that overrides it."""

    gdrive_id: str
    sha256: str  # "" = unchecked
    extract: bool  # unpack a zip/tar archive instead of copying the file
    url: str = ""  # optional: a direct link used instead of the Drive id


def _cached_asset(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.endswith(".part"))
    return files[0] if len(files) == 1 else None


def fetch_asset(name: str, item: AssetItem, cache_dir: str | Path, target: str | Path,
                retries: int, progress: bool = True) -> dict[str, Any]:
    """Fetch one published asset with gdown (Drive id, or an explicit ``url``), check it, place it in ``target/name``.

    The download is cached in ``cache_dir/name`` (resumed when interrupted); a file placed there by
    hand is used as it is. Checks: non-empty, sha256 when given, the archive opens; ``extract``
    unpacks a zip/tar archive safely, otherwise the file is copied.
    """
    import gdown  # imported here: only this optional step needs it

    url, gdrive_id, sha256, extract = item.url, item.gdrive_id, item.sha256, item.extract
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
            raise DataError(f"asset {name}",
                            f"gdown could not fetch {url or gdrive_id} ({type(err).__name__}: {message})",
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
