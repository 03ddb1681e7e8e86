"""Stage features: 20 fps joint clips -> HumanML3D 263-d features, recovered joints, stats, splits.

Reads ``paths``, ``features`` and ``poses.min_frames``; inputs the joint store of ${paths.poses}
(joints.npy, index.parquet), its clips.parquet and ${paths.annotations}/splits/*.txt; with
``features.cache`` each clip's features are kept in ${paths.cache}/features by content, so a rerun
after clips were added extracts only those; writes
${paths.features} whole or not at all: the clip store new_joint_vecs.npy, new_joints.npy and
index.parquet (``motion.data.clipstore``), Mean.npy, Std.npy, part_stats.npz,
splits/{train,val,test,all}.txt (with mirrored M ids), manifest.parquet, report.json.
"""
from __future__ import annotations

from pathlib import Path

from motion.core.io import atomic_dir, write_json
from motion.data.corpus import FeatureSettings, build_features
from stages.entry import stage_main
from stages.settings import Settings


def run(settings: Settings) -> None:
    """Compute the features of every clip of ${paths.poses} into ${paths.features}."""
    paths, section = settings.paths, settings.features
    features = FeatureSettings(section.feet_threshold, settings.poses.min_frames, section.fix_root_wrap,
                               section.batch_frames)
    cache = Path(paths.cache) / "features" if section.cache else None
    with atomic_dir(paths.features) as tmp:
        report = build_features(Path(paths.poses), Path(paths.annotations) / "splits", tmp, features, cache)
    write_json(Path(paths.metrics) / "data.json", {
        "clips": report["clips_written"],
        "frames": report["frames_written"],
        **{f"clips_{name}": n for name, n in report["clips_per_split"].items() if name != "none"},
    })
    skipped = ", ".join(f"{k} {v}" for k, v in report["skipped"].items() if v) or "none"
    cached = report.get("feature_cache")
    reused = f"; {cached['hits']} clips from the cache, {cached['misses']} computed" if cached else ""
    print(f"features: wrote {report['clips_written']} clips ({report['frames_written']} frames) to "
          f"{paths.features}; skipped: {skipped}; splits: {report['clips_per_split']}{reused}")


def main() -> None:
    """Run the stage with the settings of params.yaml."""
    stage_main("features", run)


if __name__ == "__main__":
    main()
