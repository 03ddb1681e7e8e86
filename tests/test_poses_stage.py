"""The poses stage end to end on a tiny generated AMASS tree, index.csv and captions."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from motion.core.conventions import amass_to_pose_data
from motion.core.parts import PART_NAMES
from motion.core.skeleton import mirror_joints
from motion.data.amass import load_amass
from motion.data.body_model import BuiltinSkeleton
from motion.data.captions import mirror_part_annotation
from motion.data.clipstore import open_poses
from stages import poses as stage
from tests.support.amass import write_amass_npz
from tests.support.body_model import write_smplh_model
from tests.support.params import with_overrides, write_params
from tests.support.stores import caption_file, pose_clip
from tests.support.workspace import temporaries

INDEX_HEADER = "source_path,start_frame,end_frame,new_name\n"
ROWS = [
    "./pose_data/CMU/01/01_01_poses.npy,0,60,000000.npy",
    "./pose_data/CMU/01/01_01_poses.npy,10,-1,000001.npy",
    "./pose_data/CMU/01/01_01_poses.npy,0,20,000002.npy",  # 20 frames < min_frames: skipped
    "./pose_data/BioMotionLab_NTroje/rub001/0000_walk_poses.npy,5,85,000003.npy",  # stored as BMLrub
    "./pose_data/MPI_HDM05/bk/HDM_bk_01_poses.npy,0,100,000004.npy",  # stored as HDM05; 60 frames trimmed
    "./pose_data/humanact12/humanact12/P01.npy,0,-1,000005.npy",  # HumanAct12 pose_data, used whole
]


def part(action: str, text: str) -> dict[str, str]:
    return {"action": action, "text": text}


def make_dataset(root: Path, rows: list[str] = ROWS) -> dict[str, Path]:
    """AMASS tree, annotations (index.csv, texts, part_texts.json) and a params file under ``root``."""
    amass, annotations = root / "amass", root / "annotations"
    write_amass_npz(amass / "CMU" / "01" / "01_01_poses.npz", frames=600, fps=120.0, gender="male", seed=1)
    write_amass_npz(amass / "BMLrub" / "rub001" / "0000_walk_poses.npz", frames=300, fps=60.0, gender="female", seed=2)
    write_amass_npz(amass / "HDM05" / "bk" / "HDM_bk_01_poses.npz", frames=1200, fps=120.0, seed=3)
    (amass / "CMU" / "01" / "shape.npz").write_bytes(b"not referenced, ignored")
    (amass / "humanact12" / "humanact12").mkdir(parents=True)
    np.save(amass / "humanact12" / "humanact12" / "P01.npy", np.random.default_rng(4).normal(size=(50, 24, 3)))
    (annotations / "texts").mkdir(parents=True)
    (annotations / "index.csv").write_text(INDEX_HEADER + "\n".join(rows) + "\n")
    for i in range(6):
        (annotations / "texts" / f"00000{i}.txt").write_text(
            f"a person raises the left arm {i}#a/DET person/NOUN#0.0#0.0\nsomeone turns right#someone/PRON#0.5#2.0\n")
    (annotations / "texts" / "M000001.txt").write_text("a caption written for the mirror#a/DET#0.0#0.0\n")
    annotation = {"left_arm": part("raise", "raises the left arm"), "torso": part("turn", "turns right")}
    part_texts = {"000000_0": annotation, "000003_1": annotation,
                  "M000003_1": {p: part("given", "given mirror") for p in PART_NAMES}, "999999_0": annotation}
    (annotations / "part_texts.json").write_text(json.dumps(part_texts))
    params = write_params(root, {"paths.amass": str(amass), "paths.annotations": str(annotations),
                                 "paths.poses": str(root / "poses"), "poses.body_model": "builtin",
                                 "poses.min_frames": 40, "poses.on_missing": "error", "poses.on_invalid": "error"})
    return {"amass": amass, "annotations": annotations, "poses": root / "poses", "params": params}


def run_stage(monkeypatch: pytest.MonkeyPatch, params: Path, device: str | None = None, **poses: object) -> None:
    """Run ``python -m stages.poses`` in-process with a private params file (``poses.*`` overrides and
    ``compute.device``)."""
    overrides = {f"poses.{k}": v for k, v in poses.items()} | ({"compute.device": device} if device else {})
    if overrides:
        data = with_overrides(overrides, yaml.safe_load(params.read_text()))
        params.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("LGTM_PARAMS", str(params))
    stage.main()


def builtin_pose_data(path: Path) -> np.ndarray:
    sequence = load_amass(path)
    step = int(sequence.fps / 20)
    return amass_to_pose_data(BuiltinSkeleton().joints(sequence.poses[::step], sequence.trans[::step],
                                                       sequence.betas, sequence.gender))


def toes_follow_hips(joints: np.ndarray) -> np.ndarray:
    """Per frame: does the forward direction HumanML3D derives from hips and shoulders (up x across)
    agree with where the toes point? False for a left-right mirror image of a body."""
    across = joints[:, 2] - joints[:, 1] + joints[:, 17] - joints[:, 16]
    forward = np.cross([0.0, 1.0, 0.0], across)
    toes = joints[:, 10] - joints[:, 7] + joints[:, 11] - joints[:, 8]
    return (forward[:, [0, 2]] * toes[:, [0, 2]]).sum(-1) > 0


@pytest.fixture
def dataset(tmp_path: Path) -> dict[str, Path]:
    return make_dataset(tmp_path)


def test_stage_outputs(dataset: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    run_stage(monkeypatch, dataset["params"])
    out = dataset["poses"]
    ids = ["000000", "000001", "000003", "000004", "000005"]
    assert sorted(open_poses(out).ids) == sorted(ids + ["M" + i for i in ids])
    assert sorted(p.name for p in out.iterdir()) == ["clips.parquet", "index.parquet", "joints.npy", "part_texts.json",
                                                    "report.json", "texts.parquet"]  # a few files, not one per clip

    cmu = builtin_pose_data(dataset["amass"] / "CMU" / "01" / "01_01_poses.npz")  # 600 @ 120 fps -> 100 frames
    assert cmu.shape == (100, 22, 3)
    clip = pose_clip(out, "000001")
    assert clip.dtype == np.float32 and clip.shape == (90, 22, 3)
    expected = cmu[10:].copy()
    expected[..., 0] *= -1
    np.testing.assert_allclose(clip, expected, atol=1e-5)
    np.testing.assert_array_equal(pose_clip(out, "M000001"), mirror_joints(clip))
    assert pose_clip(out, "000000").shape == (60, 22, 3)
    assert pose_clip(out, "000003").shape == (80, 22, 3)  # BMLrub alias, 60 fps -> every 3rd frame
    hdm = builtin_pose_data(dataset["amass"] / "HDM05" / "bk" / "HDM_bk_01_poses.npz")
    np.testing.assert_allclose(pose_clip(out, "000004")[:, :, 1], hdm[60:160, :, 1], atol=1e-5)
    act = np.load(dataset["amass"] / "humanact12" / "humanact12" / "P01.npy")[:, :22]
    np.testing.assert_allclose(pose_clip(out, "000005"), act, atol=1e-6)  # whole, x kept

    assert caption_file(out, "M000000").splitlines() == [
        "a person raises the right arm 0#a/DET person/NOUN#0.0#0.0", "someone turns left#someone/PRON#0.5#2.0"]
    assert caption_file(out, "M000001") == "a caption written for the mirror#a/DET#0.0#0.0\n"
    assert caption_file(out, "000002") is None

    part_texts = json.loads((out / "part_texts.json").read_text())
    assert sorted(part_texts) == ["000000_0", "000003_1", "M000000_0", "M000003_1"]
    assert part_texts["M000000_0"] == mirror_part_annotation(part_texts["000000_0"])
    assert part_texts["M000000_0"]["right_arm"] == part("raise", "raises the right arm")
    assert part_texts["M000003_1"]["head"] == part("given", "given mirror")

    clips = pd.read_parquet(out / "clips.parquet")
    assert list(clips.columns) == ["id", "source_path", "start_frame", "end_frame", "frames", "mirrored",
                                   "num_captions"]
    assert list(clips["id"]) == sorted(ids + ["M" + i for i in ids])
    row = clips.set_index("id").loc["M000001"]
    assert bool(row["mirrored"]) and row["frames"] == 90 and row["num_captions"] == 1 and row["end_frame"] == -1

    report = json.loads((out / "report.json").read_text())
    assert report["clips_written"] == 5 and report["mirrored_written"] == 5 and report["source_files"] == 4
    assert report["skipped"] == {"missing_file": 0, "invalid_file": 0, "missing_text": 0, "too_short": 1}
    assert report["skipped_ids"]["too_short"] == ["000002"]
    assert not temporaries(out.parent)  # no temporary folders left


def test_rerun_is_byte_identical(dataset: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    run_stage(monkeypatch, dataset["params"])
    first = {p.relative_to(dataset["poses"]): p.read_bytes() for p in dataset["poses"].rglob("*") if p.is_file()}
    run_stage(monkeypatch, dataset["params"])
    second = {p.relative_to(dataset["poses"]): p.read_bytes() for p in dataset["poses"].rglob("*") if p.is_file()}
    assert first == second


def test_missing_file_errors_or_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    paths = make_dataset(tmp_path, ROWS + ["./pose_data/SSM_synced/20160330/punch_poses.npy,0,50,000006.npy"])
    (paths["annotations"] / "texts" / "000006.txt").write_text("a person punches#a/DET#0.0#0.0\n")
    with pytest.raises(SystemExit) as info:
        run_stage(monkeypatch, paths["params"])
    message = str(info.value)
    assert "SSM_synced/20160330/punch_poses.npz" in message and "SSM/20160330/punch_poses.npz" in message
    assert "SMPL+H G" in message and "on_missing: skip" in message and "\n" not in message
    assert not paths["poses"].exists() and not temporaries(tmp_path)

    run_stage(monkeypatch, paths["params"], on_missing="skip")
    report = json.loads((paths["poses"] / "report.json").read_text())
    assert report["skipped"]["missing_file"] == 1 and report["skipped_ids"]["missing_file"] == ["000006"]
    assert report["clips_written"] == 5


def test_invalid_file_leaves_old_output_untouched(dataset: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    run_stage(monkeypatch, dataset["params"])
    before = (dataset["poses"] / "report.json").read_bytes()
    poses = np.zeros((300, 156))
    poses[100, 10] = np.inf  # only found when the poses are read, after the preflight
    write_amass_npz(dataset["amass"] / "BMLrub" / "rub001" / "0000_walk_poses.npz", frames=300, fps=60.0, poses=poses)
    with pytest.raises(SystemExit, match="0000_walk_poses.npz: poses holds NaN or inf"):
        run_stage(monkeypatch, dataset["params"])
    assert (dataset["poses"] / "report.json").read_bytes() == before
    assert not temporaries(dataset["poses"].parent)

    run_stage(monkeypatch, dataset["params"], on_invalid="skip")
    report = json.loads((dataset["poses"] / "report.json").read_text())
    assert report["skipped_ids"]["invalid_file"] == ["000003"] and report["clips_written"] == 4


def test_smplx_archive_and_missing_caption(dataset: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    source = dataset["amass"] / "BMLrub" / "rub001" / "0000_walk_poses.npz"
    source.rename(source.with_name("0000_walk_stageii.npz"))
    with pytest.raises(SystemExit, match="SMPL-X .*'SMPL\\+H G' archive of BioMotionLab_NTroje"):
        run_stage(monkeypatch, dataset["params"])
    source.with_name("0000_walk_stageii.npz").rename(source)
    (dataset["annotations"] / "texts" / "000004.txt").unlink()
    with pytest.raises(SystemExit, match="000004.txt: caption file is missing"):
        run_stage(monkeypatch, dataset["params"])
    run_stage(monkeypatch, dataset["params"], on_missing="skip")
    report = json.loads((dataset["poses"] / "report.json").read_text())
    assert report["skipped_ids"]["missing_text"] == ["000004"]


def test_stage_with_smplh_body_model(dataset: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    smplh = tmp_path / "smplh"
    with pytest.raises(SystemExit, match=r"male/model\.npz: SMPL\+H body model file \(female\) is missing|"
                                         r"female/model\.npz: SMPL\+H body model file \(female\) is missing"):
        run_stage(monkeypatch, dataset["params"], body_model="smplh", smplh_dir=str(smplh), device="cpu")
    assert not dataset["poses"].exists()
    write_smplh_model(smplh / "male" / "model.npz", seed=1)
    write_smplh_model(smplh / "female" / "model.npz", seed=2)
    run_stage(monkeypatch, dataset["params"])
    report = json.loads((dataset["poses"] / "report.json").read_text())
    assert report["body_model"] == "smplh" and report["clips_written"] == 5
    assert pose_clip(dataset["poses"], "000003").shape == (80, 22, 3)


def test_preflight_reports_every_invalid_file(dataset: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    amass = dataset["amass"]
    for path in (amass / "CMU" / "01" / "01_01_poses.npz", amass / "HDM05" / "bk" / "HDM_bk_01_poses.npz"):
        path.write_bytes(path.read_bytes()[:1000])  # truncated downloads
    first = r"01_01_poses\.npz: cannot be read .*truncated.* \(1 more files are invalid too\)"
    with pytest.raises(SystemExit, match=first):
        run_stage(monkeypatch, dataset["params"])
    run_stage(monkeypatch, dataset["params"], on_invalid="skip")
    report = json.loads((dataset["poses"] / "report.json").read_text())
    assert report["skipped_ids"]["invalid_file"] == ["000000", "000001", "000002", "000004"]
    assert sorted(Path(p).name for p in report["problem_files"]) == ["01_01_poses.npz", "HDM_bk_01_poses.npz"]


def test_stage_on_a_real_amass_file(reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = make_dataset(tmp_path, ["./pose_data/KIT/3/sample_poses.npy,0,-1,000000.npy",
                                    "./pose_data/KIT/3/sample_poses.npy,20,80,000001.npy"])
    (paths["amass"] / "KIT" / "3").mkdir(parents=True)
    (paths["amass"] / "KIT" / "3" / "sample_poses.npz").symlink_to(reference / "amass" / "amass_sample.npz")
    run_stage(monkeypatch, paths["params"])
    whole = pose_clip(paths["poses"], "000000")
    assert whole.shape == (101, 22, 3)  # 601 frames at 120 fps -> every 6th frame
    np.testing.assert_array_equal(pose_clip(paths["poses"], "000001"), whole[20:80])
    for clip in (whole, pose_clip(paths["poses"], "M000000")):
        y = clip[..., 1]
        assert np.all(y[:, 15] > y[:, 0]) and np.all(y[:, 0] > y[:, [7, 8, 10, 11]].min(axis=1))  # upright
        assert np.all(toes_follow_hips(clip))  # not a mirror image: same handedness as HumanML3D's joints
    for reference_clip in sorted((reference / "humanml3d" / "joints").glob("*.npy")):
        assert np.all(toes_follow_hips(np.load(reference_clip)))
    report = json.loads((paths["poses"] / "report.json").read_text())
    assert report["clips_written"] == 2 and report["source_files"] == 1


def test_preflight_names_invalid_missing_and_uncaptioned_in_one_pass(dataset: dict[str, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    amass, texts = dataset["amass"], dataset["annotations"] / "texts"
    cmu = amass / "CMU" / "01" / "01_01_poses.npz"
    cmu.write_bytes(cmu.read_bytes()[:1000])  # truncated
    (amass / "HDM05" / "bk" / "HDM_bk_01_poses.npz").unlink()
    with pytest.raises(SystemExit) as info:
        run_stage(monkeypatch, dataset["params"])
    message = str(info.value)
    assert "01_01_poses.npz: cannot be read" in message and "also 1 source files are missing" in message
    assert "HDM_bk_01_poses.npz" in message and "\n" not in message
    (texts / "000003.txt").unlink()
    (texts / "000005.txt").unlink()
    with pytest.raises(SystemExit) as info:
        run_stage(monkeypatch, dataset["params"], on_invalid="skip")
    message = str(info.value)
    assert "HDM_bk_01_poses.npz: motion file of clip 000004 is missing" in message and "\n" not in message
    assert "also " in message and "000003.txt: caption file is missing; 2 of 2 clips have no caption" in message


def test_pose_cache_reuses_sources_by_content(dataset: dict[str, Path], tmp_path: Path) -> None:
    from motion.core.settings import build
    from motion.data.poses import PoseSettings, extract_poses

    params = yaml.safe_load(dataset["params"].read_text())
    settings, annotations = build(PoseSettings, params["poses"]), dataset["annotations"]

    def run(out: str, cache: Path | None) -> dict:
        return extract_poses(annotations / "index.csv", dataset["amass"], annotations, tmp_path / out,
                             BuiltinSkeleton(), settings, cache_dir=cache)

    plain = run("plain", None)
    assert "pose_cache" not in plain
    off = dataclasses.replace(settings, cache=False)
    assert "pose_cache" not in extract_poses(annotations / "index.csv", dataset["amass"], annotations,
                                             tmp_path / "off", BuiltinSkeleton(), off, cache_dir=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()
    cache = tmp_path / "cache"
    assert run("first", cache)["pose_cache"] == {"hits": 0, "misses": 4}
    assert run("second", cache)["pose_cache"] == {"hits": 4, "misses": 0}
    write_amass_npz(dataset["amass"] / "CMU" / "01" / "01_01_poses.npz", frames=600, fps=120.0, seed=9)  # new content
    assert run("third", cache)["pose_cache"] == {"hits": 3, "misses": 1}
    for name in ("joints.npy", "index.parquet", "texts.parquet", "clips.parquet"):
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
    for run_name in ("first", "second"):  # the report output does not depend on the cache's history
        assert (tmp_path / run_name / "report.json").read_bytes() == (tmp_path / "plain" / "report.json").read_bytes()
    changed = pose_clip(tmp_path / "third", "000000")
    assert not np.array_equal(changed, pose_clip(tmp_path / "second", "000000"))
