"""The features stage end to end on a tiny ${paths.poses} built here (FK of smooth random rotations)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from motion.core.parts import FEATURE_GROUPS, PART_INDICES, PART_NAMES
from motion.core.skeleton import mirror_joints
from motion.data.clipstore import FEATURE_JOINTS, FEATURE_VECS, POSE_JOINTS, ClipWriter, open_features
from motion.data.corpus import FeatureSettings, build_features
from motion.data.features import extract_features, recover_from_ric
from stages import features as stage
from tests.support.motions import synthetic_clip
from tests.support.stores import write_joint_store
from tests.support.workspace import temporaries

ORIGINALS = ["000000", "000001", "000002", "000003", "000004", "000005"]
SPLITS = {"train": ["000000", "000001", "000002"], "val": ["000003"], "test": ["000004", "000005", "000006", "000007"]}


def make_poses(root, rng) -> dict[str, np.ndarray]:
    """A poses folder: six clips + mirrors, one too short (000006), one with NaN (000007)."""
    clips: dict[str, np.ndarray] = {}
    for clip_id in ORIGINALS:
        joints = synthetic_clip(rng, int(rng.integers(40, 90)))
        clips[clip_id], clips["M" + clip_id] = joints, mirror_joints(joints)
    clips["000006"] = synthetic_clip(rng, 12)
    nan_clip = synthetic_clip(rng, 50)
    nan_clip[10, 3] = np.nan
    clips["000007"] = nan_clip
    records = []
    write_joint_store(root / "poses", clips)
    for clip_id, joints in clips.items():
        records.append({"id": clip_id, "source_path": f"./pose_data/Synthetic/{clip_id.lstrip('M')}_poses.npy",
                        "start_frame": 0, "end_frame": len(joints), "frames": len(joints),
                        "mirrored": clip_id.startswith("M"), "num_captions": 3})
    pd.DataFrame.from_records(records).to_parquet(root / "poses" / "clips.parquet", index=False)
    (root / "annotations" / "splits").mkdir(parents=True)
    for name, ids in SPLITS.items():
        (root / "annotations" / "splits" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    return clips


@pytest.fixture
def project(tmp_path, stage_params):
    """A working folder with tiny inputs and the real params (paths moved here); returns (folder, clips)."""
    clips = make_poses(tmp_path, np.random.default_rng(0))
    stage_params({"paths.poses": "poses", "paths.annotations": "annotations", "paths.features": "features",
                  "paths.metrics": "metrics", "features.batch_frames": 150})
    return tmp_path, clips


def test_stage_writes_features_stats_splits_and_manifest(project):
    root, clips = project
    stage.main()
    out = root / "features"
    store = open_features(out)
    written = sorted(store.ids)
    assert written == sorted(ORIGINALS + ["M" + i for i in ORIGINALS])
    assert store.ids == ORIGINALS + ["M" + i for i in ORIGINALS]  # HumanML3D's list order
    metrics = json.loads((root / "metrics" / "data.json").read_text())
    assert metrics["clips"] == len(written) and metrics["clips_train"] == 6
    for clip_id in written:
        vecs = np.asarray(store.load(clip_id, FEATURE_VECS))
        joints = np.asarray(store.load(clip_id, FEATURE_JOINTS))
        assert vecs.dtype == np.float32 and vecs.shape == (len(clips[clip_id]) - 1, 263)
        np.testing.assert_allclose(vecs, extract_features(clips[clip_id]), atol=1e-6)
        assert joints.shape == (len(vecs), 22, 3)
        np.testing.assert_allclose(joints, recover_from_ric(vecs), atol=1e-5)

    train = ["000000", "000001", "000002", "M000000", "M000001", "M000002"]
    frames = np.concatenate([store.load(i, FEATURE_VECS).astype(np.float64) for i in train])
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    assert mean.shape == std.shape == (263,) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, frames.mean(axis=0), rtol=1e-5, atol=1e-6)
    for group in FEATURE_GROUPS:
        np.testing.assert_allclose(std[group], frames[:, group].std(axis=0).mean(), rtol=1e-5)
    stats = np.load(out / "part_stats.npz")
    assert sorted(stats.files) == sorted(f"{n}_{s}" for n in ("whole_body", *PART_NAMES) for s in ("mean", "std"))
    np.testing.assert_allclose(stats["whole_body_std"], frames.std(axis=0, ddof=1), rtol=1e-5, atol=1e-7)
    left_leg = frames[:, PART_INDICES["left_leg"]].mean(axis=0)
    np.testing.assert_allclose(stats["left_leg_mean"], left_leg, rtol=1e-5, atol=1e-6)

    read = lambda name: (out / "splits" / f"{name}.txt").read_text().split()  # noqa: E731
    assert read("train") == train
    assert read("val") == ["000003", "M000003"]
    assert read("test") == ["000004", "000005", "M000004", "M000005"]
    assert read("all") == ORIGINALS + ["M" + i for i in ORIGINALS]

    manifest = pd.read_parquet(out / "manifest.parquet")
    assert list(manifest.columns) == ["id", "source_path", "frames", "split", "num_captions", "mirrored"]
    assert list(manifest["id"]) == read("all")
    row = manifest.set_index("id").loc["M000003"]
    assert row["split"] == "val" and bool(row["mirrored"]) and row["frames"] == len(clips["M000003"]) - 1
    report = (out / "report.json").read_text()
    assert '"too_short": 1' in report and '"nan_joints": 1' in report


def test_stage_rerun_is_byte_identical(project):
    root, _ = project
    stage.main()
    first = {p.relative_to(root): p.read_bytes() for p in (root / "features").rglob("*") if p.is_file()}
    stage.main()
    second = {p.relative_to(root): p.read_bytes() for p in (root / "features").rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)
    assert temporaries(root, ".features") == []


def test_stage_missing_input_fails_cleanly(project):
    root, _ = project
    (root / "poses" / "clips.parquet").unlink()
    with pytest.raises(SystemExit, match="clips.parquet.*poses stage"):
        stage.main()
    assert not (root / "features").exists()
    assert temporaries(root, ".features") == []


def test_stage_rejects_bad_joint_shapes(project):
    root, clips = project
    with ClipWriter(root / "poses", {POSE_JOINTS: ((22,), np.float32)}) as store:  # (T, 22): not joint positions
        for clip_id, joints in clips.items():
            store.add(clip_id, joints=joints[..., 0])
    with pytest.raises(SystemExit, match="joints.npy.*shape"):
        stage.main()
    assert not (root / "features").exists()


def test_stage_names_a_clip_missing_from_the_joint_store(project):
    root, clips = project
    write_joint_store(root / "poses", {k: v for k, v in clips.items() if k != "M000002"})
    with pytest.raises(SystemExit, match=r"poses/index\.parquet: clip M000002 is not in the store.*dvc repro poses"):
        stage.main()
    assert not (root / "features").exists()


def test_feature_cache_computes_only_new_clips_and_keeps_the_bytes(project):
    root, clips = project
    settings = FeatureSettings(feet_threshold=0.002, min_frames=40, fix_root_wrap=False, batch_frames=150)
    splits, cache = root / "annotations" / "splits", root / "cache"
    store_files = ("new_joint_vecs.npy", "new_joints.npy", "index.parquet", "Mean.npy", "Std.npy", "report.json")

    def run(name: str, cache_dir=cache, cfg=settings) -> dict:
        return build_features(root / "poses", splits, root / name, cfg, cache_dir)

    assert "feature_cache" not in run("plain", None)
    assert run("cold", cache)["feature_cache"] == {"hits": 0, "misses": 12}  # 000006 too short, 000007 NaN
    assert run("warm", cache)["feature_cache"] == {"hits": 12, "misses": 0}
    for name in store_files:
        assert (root / "cold" / name).read_bytes() == (root / "plain" / name).read_bytes()
        assert (root / "warm" / name).read_bytes() == (root / "plain" / name).read_bytes()

    changed = {**clips, "M000002": clips["M000002"] + np.float32(0.01)}  # one clip moved by 1 cm
    write_joint_store(root / "poses", changed)
    assert run("changed", cache)["feature_cache"] == {"hits": 11, "misses": 1}
    run("changed_plain", None)
    for name in store_files:  # computed alone or in a batch: the same bytes
        assert (root / "changed" / name).read_bytes() == (root / "changed_plain" / name).read_bytes()
    other = dataclasses.replace(settings, feet_threshold=0.003)
    assert run("threshold", cache, other)["feature_cache"] == {"hits": 0, "misses": 12}
