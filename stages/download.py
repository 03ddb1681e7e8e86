"""Stage download: the AMASS motion tree and HumanML3D annotations (or a synthetic stand-in), plus optional assets.

Outputs (CONTRACT.md): ${paths.amass}, ${paths.annotations}, ${paths.assets}; each is written to a
temporary folder and renamed into place, so a failure leaves the previous outputs untouched.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from motion.core.config import load_params
from motion.data.download import (
    AmassSource,
    AssetItem,
    Assets,
    LocalArchives,
    RemoteArchives,
    check_source,
    make_amass,
    make_assets,
    make_synthetic,
)

log = logging.getLogger("stages.download")


def amass_source(cfg: Mapping[str, Any]) -> AmassSource:
    """The AMASS source of ``params['download']``."""
    local, remote = cfg["amass_local"], cfg["amass_remote"]
    remote_archives = RemoteArchives(
        str(remote["base_url"] or ""), str(remote["auth"]), str(remote["username_env"] or ""),
        str(remote["password_env"] or ""), str(remote["token_env"] or ""), tuple(remote["archives"] or ()),
        str(remote["download_dir"]), int(remote["retries"]), float(remote["backoff_s"]), float(remote["timeout_s"]))
    return AmassSource(cfg["source"], str(cfg["humanml3d_dir"] or ""), dict(cfg["dataset_folders"] or {}),
                       LocalArchives(str(local["archive_dir"] or ""), bool(local["link"])), remote_archives)


def assets(cfg: Mapping[str, Any]) -> Assets:
    """The published assets of ``params['download']['assets']``."""
    items = {name: AssetItem(str(item["gdrive_id"] or ""), str(item["sha256"] or ""), bool(item["extract"]),
                             str(item.get("url") or "")) for name, item in (cfg["items"] or {}).items()}
    return Assets(bool(cfg["enabled"]), str(cfg["cache_dir"]), int(cfg["retries"]), items)


def run(params: Mapping[str, Any]) -> None:
    """Write ${paths.amass}, ${paths.annotations} and ${paths.assets} from ``params['download']``."""
    paths, cfg = params["paths"], params["download"]
    amass, annotations = Path(paths["amass"]), Path(paths["annotations"])
    if check_source(cfg["source"]) == "synthetic":
        make_synthetic(int(cfg["synthetic"]["num_motions"]), int(cfg["synthetic"]["seed"]), amass, annotations)
    else:
        make_amass(amass_source(cfg), amass, annotations)
    make_assets(assets(cfg["assets"]), Path(paths["assets"]))


def main() -> None:
    """Run the download stage with the settings of params.yaml."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(load_params())


if __name__ == "__main__":
    main()
