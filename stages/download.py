"""Stage download: the AMASS motion tree and HumanML3D annotations (or a synthetic stand-in), plus optional assets.

Outputs: ${paths.amass}, ${paths.annotations}, ${paths.assets}; each is written to a temporary folder
and renamed into place, so a failure leaves the previous outputs untouched.
"""
from __future__ import annotations

import logging
from pathlib import Path

from motion.core.settings import convert
from motion.data.download import (
    AmassSource,
    Assets,
    LocalArchives,
    RemoteArchives,
    make_amass,
    make_assets,
    make_synthetic,
)
from stages.entry import stage_main
from stages.settings import Settings

log = logging.getLogger("stages.download")


def run(settings: Settings) -> None:
    """Write ${paths.amass}, ${paths.annotations} and ${paths.assets} from ``settings.download``."""
    paths, cfg = settings.paths, settings.download
    amass, annotations = Path(paths.amass), Path(paths.annotations)
    if cfg.source == "synthetic":
        make_synthetic(cfg.synthetic.num_motions, settings.seed, amass, annotations)
    else:
        source = AmassSource(cfg.source, cfg.humanml3d_dir, cfg.dataset_folders,
                             convert(LocalArchives, cfg.amass_local), convert(RemoteArchives, cfg.amass_remote))
        make_amass(source, amass, annotations)
    make_assets(convert(Assets, cfg.assets), Path(paths.assets))


def main() -> None:
    """Run the download stage with the settings of params.yaml."""
    stage_main("download", run)


if __name__ == "__main__":
    main()
