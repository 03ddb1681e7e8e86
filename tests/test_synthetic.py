"""Synthetic dataset: determinism, file formats, HumanML3D conversion, physical plausibility, semantics."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from motion.core import conventions
from motion.core.kinematics import smpl_forward_kinematics
from motion.core.parts import PART_NAMES
from motion.core.skeleton import JOINT_INDEX as J
from motion.core.skeleton import PARENTS, TARGET_OFFSETS
from motion.data.captions import IDLE, read_captions
from motion.data.synthetic import body_scale_from_betas, generate_dataset
from motion.data.synthetic.actions import ACTIONS
from motion.data.synthetic.body import Body, betas_from_body_scale
from motion.data.synthetic.captions import LEXICON, balanced_order, make_captions
from motion.data.synthetic.compose import caption_order, pose_track, sample_motion, to_amass
from motion.data.synthetic.track import Segment

NUM_MOTIONS = 60


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("synthetic")
    summary = generate_dataset(root / "amass", root / "annotations", NUM_MOTIONS, seed=7)
    return root / "amass", root / "annotations", summary


def _labels(annotations: Path) -> dict:
    return json.loads((annotations / "synthetic_labels.json").read_text())


def _clip_joints(amass: Path, row: dict) -> tuple[np.ndarray, float]:
    """HumanML3D joints of one index row: FK of the npz with the stored body size, 20 fps, cut, x negated."""
    path = amass / (row["source_path"][len("./pose_data/"):-4] + ".npz")
    data = np.load(path)
    scale = body_scale_from_betas(data["betas"])
    joints = smpl_forward_kinematics(data["poses"], data["trans"], TARGET_OFFSETS * scale)
    step = conventions.downsample_step(float(data["mocap_framerate"]), str(path))
    pose_data = conventions.amass_to_pose_data(joints)[::step]
    return conventions.cut_clip(pose_data, row["start_frame"], row["end_frame"], row["source_path"]), scale


def _index_rows(annotations: Path) -> list[dict]:
    lines = (annotations / "index.csv").read_text().splitlines()
    assert lines[0] == "source_path,start_frame,end_frame,new_name"
    rows = []
    for line in lines[1:]:
        source, start, end, new_name = line.split(",")
        rows.append({"source_path": source, "start_frame": int(start), "end_frame": int(end), "new_name": new_name})
    return rows


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    generate_dataset(tmp_path / "a" / "amass", tmp_path / "a" / "ann", 12, seed=3)
    generate_dataset(tmp_path / "b" / "amass", tmp_path / "b" / "ann", 12, seed=3)
    generate_dataset(tmp_path / "c" / "amass", tmp_path / "c" / "ann", 12, seed=4)
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b and len(a) == 12 + 12 + 1 + 3 + 2
    assert a != c
    assert not list(tmp_path.rglob("*.tmp"))


def test_summary_and_file_counts(dataset):
    amass, annotations, summary = dataset
    assert summary["motions"] == NUM_MOTIONS and summary["captions"] == 3 * NUM_MOTIONS
    assert summary["actions"] >= 20
    assert len(list((amass / "Synthetic").glob("subject_*/*_poses.npz"))) == NUM_MOTIONS
    assert len(list((annotations / "texts").glob("*.txt"))) == NUM_MOTIONS
    assert set(summary["compositions"]) == {"single", "simultaneous", "sequential"}
    assert all(n > 0 for n in summary["compositions"].values())


def test_npz_is_amass_smplh_format(dataset):
    amass, _, _ = dataset
    rates = set()
    for path in sorted((amass / "Synthetic").rglob("*.npz")):
        data = np.load(path)
        assert data.files == ["poses", "trans", "betas", "gender", "mocap_framerate", "dmpls"]
        frames = len(data["poses"])
        assert data["poses"].shape == (frames, 156) and data["trans"].shape == (frames, 3)
        assert data["betas"].shape == (16,) and data["dmpls"].shape == (frames, 8)
        assert str(data["gender"]) in {"male", "female", "neutral"}
        assert np.all(data["poses"][:, 66:] == 0)  # hands rest
        fps = float(data["mocap_framerate"])
        rates.add(fps)
        assert 0.85 <= body_scale_from_betas(data["betas"]) <= 1.15
    assert rates == {60.0, 100.0, 120.0}


def test_index_texts_splits_follow_humanml3d(dataset):
    _, annotations, _ = dataset
    rows = _index_rows(annotations)
    ids = [r["new_name"][:-4] for r in rows]
    assert ids == [f"{i:06d}" for i in range(NUM_MOTIONS)]
    for row, motion_id in zip(rows, ids):
        source = row["source_path"]
        assert source.startswith("./pose_data/Synthetic/subject_") and source.endswith("_poses.npy")
        assert 40 <= row["end_frame"] - row["start_frame"] <= 196
        captions = read_captions(annotations / "texts" / f"{motion_id}.txt")
        assert len(captions) == 3 and len({c.text for c in captions}) == 3
        for c in captions:
            words = [w for w in c.text.replace(",", " ").replace(".", " ").split()]
            tokens = c.tokens.split()
            assert len(words) == len(tokens) and all("/" in t for t in tokens)
            assert (c.start, c.end) == (0.0, 0.0)
    splits = {s: (annotations / "splits" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sorted(sum(splits.values(), [])) == ids
    assert len(splits["train"]) == 48 and len(splits["val"]) == 6 and len(splits["test"]) == 6


def test_part_texts_complete_and_consistent_with_labels(dataset):
    _, annotations, _ = dataset
    part_texts = json.loads((annotations / "part_texts.json").read_text())
    labels = _labels(annotations)
    assert sorted(part_texts) == sorted(f"{m}_{k}" for m in labels for k in range(3))
    for seg_id, annotation in part_texts.items():
        assert set(annotation) == set(PART_NAMES)
        label = labels[seg_id.split("_")[0]]
        for part in PART_NAMES:
            if label["parts"][part] == "idle":
                assert annotation[part] == IDLE
            else:
                assert annotation[part]["action"] == ACTIONS[label["parts"][part]].verb
                assert annotation[part]["text"] and annotation[part]["action"] != "idle"
    singles = [lab for lab in labels.values() if lab["composition"] == "single"]
    assert singles and all(len(lab["segments"]) == 1 for lab in singles)


def test_catalogue_covers_six_parts_with_twenty_actions():
    assert len(ACTIONS) >= 20
    assert {p for a in ACTIONS.values() for p in a.parts} == set(PART_NAMES)
    for a in ACTIONS.values():
        assert set(a.part_texts) == set(a.parts) and len(a.phrases) >= 3


JOINT_WORDS = {"elbow", "elbows", "knee", "knees", "hip", "hips", "thigh", "thighs", "forearm", "forearms", "neck",
               "spine", "pelvis", "ankles", "shoulder", "shoulders"}


def test_every_action_is_phrased_both_ways_in_balanced_proportions():
    """End-effector / movement phrasings and joint-rotation phrasings, as many of each, alternating per motion."""
    rng = np.random.default_rng(0)
    for a in ACTIONS.values():
        assert len(a.joint_phrases) == len(a.phrases), a.name
        assert all(JOINT_WORDS & set(p.replace(",", "").split()) for p in a.joint_phrases), a.name
        order = balanced_order(a, rng)
        styles = [int(i >= len(a.phrases)) for i in order]
        assert sorted(order) == list(range(len(a.all_phrases))) and all(x != y for x, y in zip(styles, styles[1:]))
    firsts = [int(balanced_order(ACTIONS["reach_left"], rng)[0] >= 4) for _ in range(400)]
    assert 0.4 < np.mean(firsts) < 0.6  # either style comes first equally often
    seg = Segment("touch_shoulder_right", 0.0, 2.0, {"duration": 2.0})
    texts = [c.text for c in make_captions([seg], "single", "male", np.random.default_rng(3), count=4)]
    assert sum(any(w in JOINT_WORDS - {"shoulder"} for w in t.replace(".", "").split()) for t in texts) == 2, texts


def test_humanml3d_conversion_is_upright_grounded_and_rigid(dataset):
    amass, annotations, _ = dataset
    labels = _labels(annotations)
    for row in _index_rows(annotations):
        label = labels[row["new_name"][:-4]]
        joints, scale = _clip_joints(amass, row)
        assert len(joints) == row["end_frame"] - row["start_frame"] == label["frames"]
        assert scale == pytest.approx(label["body_scale"], abs=1e-9)
        feet = joints[:, [7, 8, 10, 11], 1].min(axis=1)
        assert feet.min() > -1e-4  # never below the floor
        jumps = any(s["action"] == "jump" for s in label["segments"])
        on_floor = np.abs(feet) < 1e-4
        assert on_floor.all() if not jumps else on_floor.mean() > 0.5
        # y-up and upright: the spine rises from the pelvis, the head stays above the knees (even bent over
        # 90 degrees), the pelvis is above the standing foot
        assert np.all(joints[:, J["spine1"], 1] - joints[:, J["pelvis"], 1] > 0.05)
        assert np.all(joints[:, J["head"], 1] - joints[:, [J["left_knee"], J["right_knee"]], 1].max(axis=1) > 0.2)
        assert np.all(joints[:, J["pelvis"], 1] - joints[:, [J["left_ankle"], J["right_ankle"]], 1].min(axis=1) > 0.3)
        for j, p in enumerate(PARENTS[1:], start=1):
            length = np.linalg.norm(joints[:, j] - joints[:, p], axis=-1)
            assert np.allclose(length, scale * np.linalg.norm(TARGET_OFFSETS[j]), atol=1e-5)


def test_joint_angles_stay_in_human_ranges(dataset):
    amass, _, _ = dataset
    limits = {"left_hip": 125, "right_hip": 125, "left_knee": 130, "right_knee": 130, "left_ankle": 50,
              "right_ankle": 50, "spine1": 40, "spine2": 35, "spine3": 35, "neck": 70, "left_collar": 1,
              "right_collar": 1, "left_shoulder": 180, "right_shoulder": 180, "left_elbow": 150, "right_elbow": 150}
    for path in sorted((amass / "Synthetic").rglob("*.npz")):
        body = np.load(path)["poses"][:, :66].reshape(-1, 22, 3)
        angles = np.degrees(np.linalg.norm(body, axis=-1)).max(axis=0)
        for joint, limit in limits.items():
            assert angles[J[joint]] <= limit, (path.name, joint, angles[J[joint]])


def test_body_scale_betas_round_trip():
    for scale in (0.88, 1.0, 1.12):
        assert body_scale_from_betas(betas_from_body_scale(scale)) == pytest.approx(scale)
    assert body_scale_from_betas(np.array([2.0] + [0.0] * 15)) == pytest.approx(1.1)


# --------------------------------------------------------------------------- action semantics
def _render(action: str, params: dict | None = None, scale: float = 1.0, seed: int = 0,
            heading: float = 0.7) -> tuple[np.ndarray, Segment]:
    """Canonical y-up joints (N, 22, 3) at 60 fps of one action alone, via the AMASS export."""
    rng = np.random.default_rng(seed)
    spec = sample_motion(rng, "single", action)
    spec.segments[0].params.update(params or {})
    body = Body(scale)
    track = pose_track(spec, body, 60, 6, 6)
    poses, trans, _ = to_amass(track, heading, np.zeros(2))
    pose_data = conventions.amass_to_pose_data(smpl_forward_kinematics(poses, trans, body.offsets))
    joints = conventions.cut_clip(pose_data, 0, -1, "./pose_data/Synthetic/test.npy")  # HumanML3D's frame
    t = track.t
    seg = spec.segments[0]
    middle = (t > seg.start + 0.4 * (seg.end - seg.start)) & (t < seg.start + 0.6 * (seg.end - seg.start))
    return joints, middle


def _frame_axes(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body left and forward unit vectors (N, 3) in HumanML3D's y-up frame."""
    left = joints[:, J["left_hip"]] - joints[:, J["right_hip"]]
    left[:, 1] = 0
    left /= np.linalg.norm(left, axis=-1, keepdims=True)
    forward = np.cross(left, np.array([0.0, 1.0, 0.0]))  # left (+x) x up (+y) = forward (+z) at rest
    return left, forward


def test_arm_actions_reach_their_targets():
    j, mid = _render("wave_right")
    assert np.all(j[mid, J["right_wrist"], 1] > j[mid, J["right_shoulder"], 1] + 0.1)
    assert np.ptp(j[:, J["left_wrist"]] - j[:, J["spine3"]], axis=0).max() < 1e-9  # the idle arm stays put
    j, mid = _render("raise_left")
    assert np.all(j[mid, J["left_wrist"], 1] > j[mid, J["head"], 1])
    j, mid = _render("clap")
    gap = np.linalg.norm(j[:, J["left_wrist"]] - j[:, J["right_wrist"]], axis=-1)
    assert gap.min() < 0.1 and gap[mid].max() > 0.15
    j, mid = _render("touch_head_right")
    assert np.linalg.norm(j[mid, J["right_wrist"]] - j[mid, J["head"]], axis=-1).max() < 0.15
    j, mid = _render("touch_shoulder_left")
    assert np.linalg.norm(j[mid, J["left_wrist"]] - j[mid, J["right_shoulder"]], axis=-1).max() < 0.12
    j, mid = _render("reach_right")
    _, forward = _frame_axes(j)
    reach = np.sum((j[mid, J["right_wrist"]] - j[mid, J["right_shoulder"]]) * forward[mid], axis=-1)
    assert reach.min() > 0.4


def test_head_torso_and_leg_actions_point_the_right_way():
    j, mid = _render("look_left")
    left, forward = _frame_axes(j)
    gaze = j[:, J["head"]] - j[:, J["neck"]]
    assert np.all(np.sum(gaze[mid] * left[mid], axis=-1) > 0.05)
    j, mid = _render("lean_right")
    left, _ = _frame_axes(j)
    assert np.all(np.sum((j[mid, J["neck"]] - j[mid, J["pelvis"]]) * left[mid], axis=-1) < -0.05)
    j, mid = _render("bend_forward", {"angle": 60})
    _, forward = _frame_axes(j)
    chest = j[mid, J["neck"]] - j[mid, J["spine3"]]  # the upper trunk is inclined by the caption's angle
    tilt = np.degrees(np.arccos(chest[:, 1] / np.linalg.norm(chest, axis=-1)))
    assert np.all(np.abs(tilt - 60) < 1) and np.all(np.sum(chest * forward[mid], axis=-1) > 0)
    assert np.ptp(j[:, [7, 8, 10, 11]], axis=0).max() < 1e-6  # legs stay put while bending at the hips
    j, mid = _render("kick_left", {"reps": 1})
    _, forward = _frame_axes(j)
    ahead = np.sum((j[:, J["left_ankle"]] - j[:, J["pelvis"]]) * forward, axis=-1)
    assert ahead.max() > 0.4 and j[:, J["left_ankle"], 1].max() > 0.3
    standing = j[:, J["right_ankle"]]
    assert np.ptp(standing[:, [0, 2]], axis=0).max() < 1e-6  # the standing foot does not slide
    assert np.ptp(standing[:, 1]) < 0.02  # (the target skeleton's left leg is 1.4 cm longer)
    for amplitude, drop in ((0.75, 0.18), (1.15, 0.35)):
        j, _ = _render("squat", {"amplitude": amplitude})
        assert j[:, J["pelvis"], 1].max() - j[:, J["pelvis"], 1].min() > drop


@pytest.mark.parametrize("action,direction", [("walk_forward", "forward"), ("run", "forward"),
                                              ("walk_backward", "backward"), ("side_step_left", "left"),
                                              ("side_step_right", "right")])
def test_locomotion_travels_the_right_way_with_planted_feet(action, direction):
    j, _ = _render(action, seed=2)
    left, forward = _frame_axes(j)
    travel = j[-1, J["pelvis"]] - j[0, J["pelvis"]]
    axis = {"forward": forward[0], "backward": -forward[0], "left": left[0], "right": -left[0]}[direction]
    assert travel @ axis > 0.3
    feet = j[:, [7, 10, 8, 11]]
    lowest = np.argmin(feet[:-1, :, 1], axis=1)
    frames = np.arange(len(j) - 1)
    speed = np.linalg.norm(feet[frames + 1, lowest][:, [0, 2]] - feet[frames, lowest][:, [0, 2]], axis=-1) * 60
    assert np.median(speed) < 0.05  # the lowest foot is (mostly) planted
    side = lowest // 2  # 0: left foot, 1: right foot
    touchdowns = np.nonzero(np.diff(side))[0]
    assert len(touchdowns) >= 2 and np.median(speed[touchdowns + 1]) < 1.0  # feet land without skating


def test_turns_end_facing_the_other_way():
    for action in ("walk_turn", "turn_around"):
        j, _ = _render(action)
        _, forward = _frame_axes(j)
        assert forward[0] @ forward[-1] < -0.95


def test_jump_leaves_the_ground_and_lands():
    j, _ = _render("jump", {"reps": 2})
    feet = j[:, [7, 8, 10, 11], 1].min(axis=1)
    assert feet.max() > 0.08 and abs(feet[-1]) < 1e-6


def test_captions_are_tagged_and_name_the_action_sides():
    rng = np.random.default_rng(0)
    for name in sorted(ACTIONS):
        for composition in ("single", "simultaneous", "sequential"):
            spec = sample_motion(rng, composition, name)
            captions = make_captions(caption_order(spec.segments, composition), composition, "neutral", rng)
            for c in captions:
                if name.endswith(("_left", "_right")) and composition == "single":
                    assert name.rsplit("_", 1)[1] in c.text
                assert all(t.split("/")[1] in {"DET", "PRON", "NOUN", "ADJ", "ADV", "ADP", "SCONJ", "CCONJ", "AUX",
                                               "INTJ", "NUM", "VERB"} for t in c.tokens.split())
    assert "walking" not in LEXICON  # verbs are conjugated from the templates, not looked up
