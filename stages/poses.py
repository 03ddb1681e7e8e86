"""Stage poses: AMASS sequences + HumanML3D's index.csv -> 20 fps joint clips, mirrors, captions.

Reads ``paths`` and ``poses`` from params.yaml; writes ${paths.poses} whole or not at all.
"""
from __future__ import annotations

import sys
from pathlib import Path

from motion.core.config import load_params, seed_everything
from motion.core.device import exclusive_gpu, resolve_device
from motion.core.errors import DataError
from motion.core.io import atomic_dir
from motion.data.body_model import make_body_model
from motion.data.poses import PoseSettings, extract_poses


def main() -> None:
    """Extract the joint clips of every index.csv row into ${paths.poses}."""
    params = load_params()
    paths, section = params["paths"], params["poses"]
    seed_everything(params.get("seed", 0))
    try:
        settings = PoseSettings.from_params(section)
        kind = section.get("body_model", "builtin")
        device = resolve_device(section.get("device", "auto")) if kind == "smplh" else "cpu"
        annotations = Path(paths["annotations"])
        with exclusive_gpu(device) as held, atomic_dir(paths["poses"]) as tmp:
            body_model = make_body_model(kind, section.get("smplh_dir", ""), held, settings.batch_frames)
            report = extract_poses(annotations / "index.csv", paths["amass"], annotations, tmp, body_model, settings)
    except DataError as e:
        sys.exit(f"poses: {e}")
    skipped = ", ".join(f"{k} {v}" for k, v in report["skipped"].items() if v) or "none"
    print(f"poses: wrote {report['clips_written']} clips + {report['mirrored_written']} mirrors "
          f"({report['frames_written']} frames, body model {report['body_model']}) to {paths['poses']}; "
          f"skipped: {skipped}")


if __name__ == "__main__":
    main()
