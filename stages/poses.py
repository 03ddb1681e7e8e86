"""Stage poses: AMASS sequences + HumanML3D's index.csv -> 20 fps joint clips, mirrors, captions.

Reads ``paths``, ``poses``, ``compute.device`` and ``compute.threads.poses`` (smplh only); writes
${paths.poses} whole or not at all.
"""
from __future__ import annotations

from pathlib import Path

from motion.core.device import exclusive_gpu, resolve_device
from motion.core.io import atomic_dir
from motion.core.settings import convert
from motion.data.body_model import make_body_model
from motion.data.poses import PoseSettings, extract_poses
from stages.entry import stage_main
from stages.settings import Settings


def run(settings: Settings) -> None:
    """Extract the joint clips of every index.csv row into ${paths.poses} (source pose data cached in
    ${paths.cache}/poses when ``poses.cache``)."""
    paths, poses = settings.paths, settings.poses
    device = resolve_device(settings.compute.device) if poses.body_model == "smplh" else "cpu"
    if poses.body_model == "smplh" and settings.compute.threads.poses:
        import torch

        torch.set_num_threads(settings.compute.threads.poses)
    annotations = Path(paths.annotations)
    with exclusive_gpu(device) as held, atomic_dir(paths.poses) as tmp:
        body_model = make_body_model(poses.body_model, poses.smplh_dir, held, poses.batch_frames)
        report = extract_poses(annotations / "index.csv", paths.amass, annotations, tmp, body_model,
                               convert(PoseSettings, poses), cache_dir=Path(paths.cache) / "poses")
    skipped = ", ".join(f"{k} {v}" for k, v in report["skipped"].items() if v) or "none"
    cache = report.get("pose_cache")
    reused = f"; {cache['hits']} sources from the cache, {cache['misses']} computed" if cache else ""
    print(f"poses: wrote {report['clips_written']} clips + {report['mirrored_written']} mirrors "
          f"({report['frames_written']} frames, body model {report['body_model']}) to {paths.poses}; "
          f"skipped: {skipped}{reused}")


def main() -> None:
    """Run the stage with the settings of params.yaml."""
    stage_main("poses", run)


if __name__ == "__main__":
    main()
