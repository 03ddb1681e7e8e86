"""The raw-data sources of the download stage: synthetic, local AMASS archives, remote AMASS archives, assets.

Each writes its folders whole or not at all (``atomic_dir``). For AMASS, HumanML3D's annotations
are checked and copied first (cheap, and it fails before hours of download), then the archives are
found locally or downloaded, extracted into one tree under HumanML3D's dataset names, and
HumanAct12's joint files are brought from the HumanML3D checkout.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json
from motion.data.download.amass_tree import bring_humanact12, build_amass_tree, find_amass_inputs, find_humanact12
from motion.data.download.archives import ArchiveLimits
from motion.data.download.assets import AssetItem, fetch_asset
from motion.data.download.http import archive_url, credentials_from_env, download_file
from motion.data.download.humanml3d import prepare_annotations

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "amass_local", "amass_remote")


@dataclass(frozen=True)
class LocalArchives:
    """``download.amass_local``: AMASS archives (or extracted dataset folders) on this machine."""

    archive_dir: str
    link: bool  # hard-link files of extracted folders when possible instead of copying


@dataclass(frozen=True)
class RemoteArchives:
    """``download.amass_remote``: archives fetched over HTTP; credentials come from the named env vars."""

    base_url: str
    auth: str
    username_env: str
    password_env: str
    token_env: str
    archives: tuple[str | Mapping[str, Any], ...]  # names, or {name, url, size, sha256}
    download_dir: str
    retries: int
    backoff_s: float
    timeout_s: float


@dataclass(frozen=True)
class AmassSource:
    """Where the AMASS motions and HumanML3D's annotations come from."""

    kind: Literal["amass_local", "amass_remote"]
    humanml3d_dir: str
    dataset_folders: Mapping[str, str]  # extra {AMASS folder: HumanML3D folder} renames
    local: LocalArchives
    remote: RemoteArchives


@dataclass(frozen=True)
class Assets:
    """``download.assets``: optional published files fetched with gdown."""

    enabled: bool
    cache_dir: str
    retries: int
    items: Mapping[str, AssetItem]


def check_source(source: str) -> str:
    """``source`` if it is a known data source, else a one-line DataError."""
    if source not in SOURCES:
        raise DataError("params.yaml", f"download.source {source!r} is unknown", f"use one of {', '.join(SOURCES)}")
    return source


def make_synthetic(num_motions: int, seed: int, amass: Path, annotations: Path) -> None:
    """Generate the synthetic AMASS-format dataset and its annotations (incl. ground-truth part texts)."""
    from motion.data.synthetic import generate_dataset

    with atomic_dir(amass) as amass_tmp, atomic_dir(annotations) as annotations_tmp:
        generate_dataset(amass_tmp, annotations_tmp, num_motions, seed)


def remote_archives(remote: RemoteArchives) -> list[Path]:
    """Download (resuming, verifying) every listed archive into ``download_dir``; return their paths."""
    if not remote.archives:
        raise DataError("params.yaml", "download.amass_remote.archives is empty",
                        "list the AMASS archives to fetch, e.g. [{name: CMU.tar.bz2}]")
    credentials = credentials_from_env(remote.auth, remote.username_env, remote.password_env, remote.token_env)
    folder = Path(remote.download_dir)
    paths = []
    for entry in remote.archives:
        entry = {"name": entry} if isinstance(entry, str) else dict(entry)
        name = str(entry["name"])
        if Path(name).name != name:
            raise DataError("params.yaml", f"archive name {name!r} is not a plain file name",
                            "give the name only; put a full URL in the entry's url key")
        if not entry.get("url") and not remote.base_url:
            raise DataError("params.yaml", "download.amass_remote.base_url is empty",
                            "set it to the URL folder of the archives (or give each archive a url)")
        url = entry.get("url") or archive_url(remote.base_url, name)
        paths.append(download_file(url, folder / name, size=int(entry["size"]) if entry.get("size") else None,
                                   sha256=str(entry.get("sha256") or "") or None, credentials=credentials,
                                   retries=remote.retries, backoff_s=remote.backoff_s, timeout_s=remote.timeout_s))
    return paths


def make_amass(source: AmassSource, amass: Path, annotations: Path, limits: ArchiveLimits | None = None) -> None:
    """Build the AMASS tree from local or downloaded archives and bring HumanML3D's annotations.

    ``limits`` bounds what each archive may extract to (params ``download.max_archive_members`` /
    ``download.max_archive_bytes`` once the settings carry them; None: unbounded)."""
    if not source.humanml3d_dir:
        raise DataError("params.yaml", "download.humanml3d_dir is empty",
                        "clone github.com/EricGuo5513/HumanML3D (unzip nothing) and set download.humanml3d_dir")
    if source.kind == "amass_local":
        if not source.local.archive_dir:
            raise DataError("params.yaml", "download.amass_local.archive_dir is empty",
                            "set it to the folder holding the AMASS 'SMPL+H G' .tar.bz2 archives")
        archives, folders = find_amass_inputs(source.local.archive_dir)
        link = source.local.link
    else:
        archives, folders, link = [], [], False
    with atomic_dir(annotations) as annotations_tmp:  # checked first: cheap, and fails before hours of download
        summary = prepare_annotations(source.humanml3d_dir, annotations_tmp)
        log.info("annotations: %s", summary)
        if source.kind == "amass_remote":
            archives = remote_archives(source.remote)
        with atomic_dir(amass) as amass_tmp:
            counts = build_amass_tree(archives, folders, amass_tmp, source.dataset_folders, link, limits=limits)
            humanact12 = find_humanact12(source.humanml3d_dir)
            if humanact12 is None:
                log.warning("%s has no pose_data/humanact12.zip: the HumanAct12 clips of index.csv will be missing",
                            source.humanml3d_dir)
            else:
                counts["humanact12"] = bring_humanact12(humanact12, amass_tmp)
    log.info("motion files per dataset: %s", counts)


def make_assets(assets: Assets, out: Path) -> None:
    """Fetch the enabled published assets into ``out`` and list them in ``assets.json``."""
    manifest: dict[str, Any] = {}
    with atomic_dir(out) as assets_tmp:
        if assets.enabled:
            for name, item in sorted(assets.items.items()):
                manifest[name] = fetch_asset(name, item, assets.cache_dir, assets_tmp, retries=assets.retries)
                log.info("asset %s: %s", name, manifest[name]["file"])
        write_json(assets_tmp / "assets.json", manifest)
