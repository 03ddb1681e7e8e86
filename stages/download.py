"""Stage download: the AMASS motion tree and HumanML3D annotations (or a synthetic stand-in), plus optional assets.

Outputs (CONTRACT.md): ${paths.amass}, ${paths.annotations}, ${paths.assets}; each is written to a
temporary folder and renamed into place, so a failure leaves the previous outputs untouched.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from motion.core.config import load_params
from motion.data.download import (
    archive_url,
    bring_humanact12,
    build_amass_tree,
    credentials_from_env,
    download_file,
    fetch_asset,
    find_amass_inputs,
    find_humanact12,
    prepare_annotations,
)
from motion.core.errors import DataError
from motion.core.io import atomic_dir, write_json

log = logging.getLogger("stages.download")
SOURCES = ("synthetic", "amass_local", "amass_remote")


def make_synthetic(cfg: Mapping[str, Any], amass: Path, annotations: Path) -> None:
    """Generate the synthetic AMASS-format dataset and its annotations (incl. ground-truth part texts)."""
    from motion.data.synthetic import generate_dataset

    with atomic_dir(amass) as amass_tmp, atomic_dir(annotations) as annotations_tmp:
        generate_dataset(amass_tmp, annotations_tmp, int(cfg["num_motions"]), int(cfg["seed"]))


def remote_archives(cfg: Mapping[str, Any]) -> list[Path]:
    """Download (resuming, verifying) every archive listed in ``download.amass_remote``; return their paths."""
    entries = cfg.get("archives") or []
    if not entries:
        raise DataError("params.yaml", "download.amass_remote.archives is empty",
                        "list the AMASS archives to fetch, e.g. [{name: CMU.tar.bz2}]")
    credentials = credentials_from_env(str(cfg.get("auth", "none")), str(cfg.get("username_env") or ""),
                                       str(cfg.get("password_env") or ""), str(cfg.get("token_env") or ""))
    folder = Path(cfg["download_dir"])
    paths = []
    for entry in entries:
        entry = {"name": entry} if isinstance(entry, str) else dict(entry)
        name = str(entry["name"])
        if Path(name).name != name:
            raise DataError("params.yaml", f"archive name {name!r} is not a plain file name",
                            "give the name only; put a full URL in the entry's url key")
        if not entry.get("url") and not cfg.get("base_url"):
            raise DataError("params.yaml", "download.amass_remote.base_url is empty",
                            "set it to the URL folder of the archives (or give each archive a url)")
        url = entry.get("url") or archive_url(str(cfg["base_url"]), name)
        paths.append(download_file(url, folder / name, size=int(entry["size"]) if entry.get("size") else None,
                                   sha256=str(entry.get("sha256") or "") or None, credentials=credentials,
                                   retries=int(cfg.get("retries", 5)), backoff_s=float(cfg.get("backoff_s", 2.0)),
                                   timeout_s=float(cfg.get("timeout_s", 60))))
    return paths


def make_amass(cfg: Mapping[str, Any], amass: Path, annotations: Path) -> None:
    """Build the AMASS tree from local or downloaded archives and bring HumanML3D's annotations."""
    humanml3d_dir = str(cfg.get("humanml3d_dir") or "")
    if not humanml3d_dir:
        raise DataError("params.yaml", "download.humanml3d_dir is empty",
                        "clone github.com/EricGuo5513/HumanML3D (unzip nothing) and set download.humanml3d_dir")
    if cfg["source"] == "amass_local":
        local = cfg.get("amass_local") or {}
        if not local.get("archive_dir"):
            raise DataError("params.yaml", "download.amass_local.archive_dir is empty",
                            "set it to the folder holding the AMASS 'SMPL+H G' .tar.bz2 archives")
        archives, folders = find_amass_inputs(local["archive_dir"])
        link = bool(local.get("link", True))
    else:
        archives, folders, link = [], [], False
    with atomic_dir(annotations) as annotations_tmp:  # checked first: cheap, and fails before hours of download
        summary = prepare_annotations(humanml3d_dir, annotations_tmp)
        log.info("annotations: %s", summary)
        if cfg["source"] == "amass_remote":
            archives = remote_archives(cfg.get("amass_remote") or {})
        with atomic_dir(amass) as amass_tmp:
            counts = build_amass_tree(archives, folders, amass_tmp, cfg.get("dataset_folders") or {}, link)
            humanact12 = find_humanact12(humanml3d_dir)
            if humanact12 is None:
                log.warning("%s has no pose_data/humanact12.zip: the HumanAct12 clips of index.csv will be missing",
                            humanml3d_dir)
            else:
                counts["humanact12"] = bring_humanact12(humanact12, amass_tmp)
    log.info("motion files per dataset: %s", counts)


def make_assets(cfg: Mapping[str, Any], assets: Path) -> None:
    """Fetch the enabled published assets into ``assets`` and list them in ``assets.json``."""
    manifest: dict[str, Any] = {}
    with atomic_dir(assets) as assets_tmp:
        if cfg.get("enabled"):
            for name, item in sorted((cfg.get("items") or {}).items()):
                manifest[name] = fetch_asset(name, item or {}, cfg["cache_dir"], assets_tmp,
                                             retries=int(cfg.get("retries", 3)))
                log.info("asset %s: %s", name, manifest[name]["file"])
        write_json(assets_tmp / "assets.json", manifest)


def run(params: Mapping[str, Any]) -> None:
    """Write ${paths.amass}, ${paths.annotations} and ${paths.assets} from ``params['download']``."""
    paths, cfg = params["paths"], params["download"]
    source = cfg.get("source")
    if source not in SOURCES:
        raise DataError("params.yaml", f"download.source {source!r} is unknown", f"use one of {', '.join(SOURCES)}")
    amass, annotations = Path(paths["amass"]), Path(paths["annotations"])
    if source == "synthetic":
        make_synthetic(cfg["synthetic"], amass, annotations)
    else:
        make_amass(cfg, amass, annotations)
    make_assets(cfg.get("assets") or {}, Path(paths["assets"]))


def main() -> None:
    """Run the download stage with the settings of params.yaml."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(load_params())


if __name__ == "__main__":
    main()
