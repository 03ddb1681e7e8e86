"""Constraint-guided sampling: the constraint syntax, the losses on hand-built poses, the torch RIC recovery,
guidance and part inpainting in the diffusion sampler, and the guided study sampler."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.diffusion import pack_parts, sample
from models.guidance import (
    Above,
    Below,
    ConstraintError,
    Frames,
    MotionGuidance,
    Near,
    Pitch,
    Planted,
    bone_lengths,
    constraint_loss,
    frame_violations,
    parse_constraint,
    parse_constraints,
    read_constraint_file,
    reference_parts,
    satisfaction,
    torso_pitch,
)
from models.inference import LGTMGenerator, guided_study_sampler, study_sampler
from models.kinematics import features_to_packed, packed_to_features, packed_to_joints, recover_joints
from models.lgtm import LGTM
from motion.core.errors import DataError
from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.core.parts import FEATURE_DIM, PART_NAMES, split_parts
from motion.core.sampling import SamplingConfig
from motion.core.skeleton import JOINT_INDEX
from motion.data.features import extract_features, recover_from_ric
from motion.study.constraints import torso_pitch as study_torso_pitch
from tests.support.lgtm import TINY

J = JOINT_INDEX
REFERENCE_VECS = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "humanml3d" / "vecs"


def standing(frames: int = 10) -> torch.Tensor:
    """Joints (frames, 22, 3) float64 of the rest pose standing still on the floor (toes and ankles at y = 0)."""
    rest = forward_kinematics(axis_angle_to_matrix(np.zeros((frames, 22, 3))), np.zeros((frames, 3)))
    rest[..., 1] -= rest[..., 1].min()
    return torch.from_numpy(rest.astype(np.float64))


def violation_and_grad(text: str, joints: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Loss of a constraint text on joints and its gradient w.r.t. the joints."""
    x = joints.clone().requires_grad_(True)
    loss = constraint_loss(parse_constraints(text), x)
    (grad,) = torch.autograd.grad(loss, x)
    return float(loss.detach()), grad


# ----------------------------------------------------------------------------- the syntax

def test_parse_every_kind_and_round_trip() -> None:
    text = ("near right_wrist left_shoulder 0.05 frames 40-60; above right_foot 0.2 frames 10-end; "
            "below head 1.2; planted left_foot frames 0-end; pitch 45 frames end")
    parsed = parse_constraints(text)
    assert parsed == [Near("right_wrist", "left_shoulder", 0.05, Frames(40, 60)), Above("right_foot", 0.2, Frames(10)),
                      Below("head", 1.2), Planted("left_foot"), Pitch(45.0, Frames(None, None))]
    assert [c.text() for c in parsed] == ["near right_wrist left_shoulder 0.05 frames 40-60",
                                          "above right_foot 0.2 frames 10-end", "below head 1.2",
                                          "planted left_foot", "pitch 45 frames end"]
    assert parse_constraints([c.text() for c in parsed]) == parsed
    assert parse_constraint("above left_wrist 1.5 frames 7") == Above("left_wrist", 1.5, Frames(7, 7))
    assert parse_constraints("") == [] and parse_constraints(["", " ; "]) == []


@pytest.mark.parametrize("text, token", [
    ("touch right_wrist left_shoulder", "touch"),
    ("near right_hand left_shoulder 0.05", "right_hand"),
    ("near right_wrist left_shoulder five", "five"),
    ("near right_wrist left_shoulder", "left_shoulder"),
    ("near right_wrist right_wrist 0.1", "right_wrist"),
    ("near right_wrist left_shoulder -0.1", "-0.1"),
    ("above head 1.0 during 3-4", "during"),
    ("above head 1.0 frames 5-3", "5-3"),
    ("above head 1.0 frames a-3", "a"),
    ("above head 1.0 frames 5-", "5-"),
    ("above head 1.0 frames", "frames"),
    ("above head 1.0 frames 1-2 3-4", "3-4"),
    ("above head nan", "nan"),
    ("pitch 120", "120"),
    ("planted frames 1-2", "frames"),
])
def test_malformed_constraints_name_the_bad_token_and_the_syntax(text: str, token: str) -> None:
    with pytest.raises(ConstraintError) as err:
        parse_constraint(text)
    message = str(err.value)
    assert f"bad token {token!r}" in message and "syntax: near <jointA>" in message and "\n" not in message


def test_constraint_file(tmp_path: Path) -> None:
    good = tmp_path / "c.yaml"
    good.write_text("- near right_wrist left_shoulder 0.05 frames 40-60\n- planted left_foot\n")
    assert read_constraint_file(good) == ["near right_wrist left_shoulder 0.05 frames 40-60", "planted left_foot"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("near: right_wrist\n")
    with pytest.raises(DataError, match="bad.yaml: expected a YAML list"):
        read_constraint_file(bad)
    with pytest.raises(DataError, match="absent.yaml"):
        read_constraint_file(tmp_path / "absent.yaml")
    (tmp_path / "typo.yaml").write_text("- above heda 1.0\n")
    with pytest.raises(ConstraintError, match="'heda'"):
        read_constraint_file(tmp_path / "typo.yaml")


# ----------------------------------------------------------------------------- losses on hand-built poses

def test_near_loss() -> None:
    pose = standing()
    loss, grad = violation_and_grad("near right_wrist left_shoulder 0.05", pose)
    distance = float(torch.linalg.norm(pose[0, J["right_wrist"]] - pose[0, J["left_shoulder"]]))
    assert loss == pytest.approx(distance - 0.05, abs=1e-6)
    towards = pose[:, J["left_shoulder"]] - pose[:, J["right_wrist"]]
    assert ((-grad[:, J["right_wrist"]]) * towards).sum(-1).min() > 0  # descending moves the wrist to the shoulder
    touching = pose.clone()
    touching[:, J["right_wrist"]] = pose[:, J["left_shoulder"]] + torch.tensor([0.0, 0.0, 0.04], dtype=pose.dtype)
    assert violation_and_grad("near right_wrist left_shoulder 0.05", touching)[0] == 0.0
    partly = pose.clone()
    partly[:5] = touching[:5]  # satisfied in frames 0-4 only
    assert violation_and_grad("near right_wrist left_shoulder 0.05 frames 0-4", partly)[0] == 0.0
    assert violation_and_grad("near right_wrist left_shoulder 0.05 frames 3-end", partly)[0] > 0.1


def test_above_and_below_losses() -> None:
    pose = standing()
    loss, grad = violation_and_grad("above right_foot 0.2", pose)
    foot = float(pose[0, J["right_foot"], 1])  # the right leg is 1 cm shorter than the left: its foot is not at 0
    assert loss == pytest.approx(0.2 - foot, abs=1e-6) and float(-grad[:, J["right_foot"], 1].min()) > 0  # upwards
    lifted = pose.clone()
    lifted[:, J["right_foot"], 1] += 0.3
    assert violation_and_grad("above right_foot 0.2", lifted)[0] == 0.0  # the left foot keeps the floor at 0
    head = float(pose[0, J["head"], 1])
    assert violation_and_grad(f"below head {head + 0.01}", pose)[0] == 0.0
    loss, grad = violation_and_grad(f"below head {head - 0.1}", pose)
    assert loss == pytest.approx(0.1, abs=1e-6) and float(-grad[:, J["head"], 1].max()) < 0  # downwards
    raised = pose + torch.tensor([0.0, 5.0, 0.0], dtype=pose.dtype)  # heights are above the floor, not y = 0
    assert violation_and_grad(f"below head {head + 0.01}", raised)[0] == 0.0


def test_planted_loss() -> None:
    pose = standing()
    assert violation_and_grad("planted left_foot; planted right_ankle", pose)[0] == 0.0
    sliding = pose.clone()
    sliding[:, J["left_foot"], 0] += torch.linspace(0, 0.5, len(pose), dtype=pose.dtype)
    loss, grad = violation_and_grad("planted left_foot", sliding)
    assert loss > 0.05
    assert float(grad[-1, J["left_foot"], 0]) > 0 > float(grad[0, J["left_foot"], 0])  # pulled back to the middle
    lifted = pose.clone()
    lifted[:, J["left_foot"], 1] += 0.2
    loss, grad = violation_and_grad("planted left_foot", lifted)
    assert loss == pytest.approx(0.2 - 0.05, abs=1e-6) and float(-grad[:, J["left_foot"], 1].max()) < 0
    assert violation_and_grad("planted left_foot frames 3", sliding)[0] == 0.0  # one frame never drifts


def lean(pose: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate every joint above the pelvis about the pelvis' x axis, leaning the torso forward (+z) by ``degrees``."""
    a = np.radians(degrees)
    rot = torch.tensor([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]], dtype=pose.dtype)  # y->+z
    out = pose.clone()
    upper = [J[n] for n in ("spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar",
                            "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                            "right_wrist")]
    pelvis = pose[:, J["pelvis"]][:, None]
    out[:, upper] = (pose[:, upper] - pelvis) @ rot.T + pelvis
    return out


def test_pitch_loss_and_angle() -> None:
    pose = standing()
    bent = lean(pose, 45.0)
    pitch = torch.rad2deg(torso_pitch(bent)).numpy()
    # the rest shoulders differ in height by 1 cm, which turns the facing direction by a hair after leaning
    assert np.allclose(pitch, 45.0, atol=0.01)
    assert np.allclose(pitch, study_torso_pitch(bent.numpy()), atol=0.01)  # the study's measure
    assert np.allclose(torch.rad2deg(torso_pitch(lean(pose, -20.0))).numpy(), -20.0, atol=0.01)  # leaning back
    assert violation_and_grad("pitch 45", bent)[0] == 0.0
    assert violation_and_grad("pitch 48", bent)[0] == 0.0  # within the 5 degree tolerance
    loss, grad = violation_and_grad("pitch 45", pose)
    assert loss == pytest.approx(np.radians(40.0), abs=1e-6)
    assert float(-grad[:, J["neck"], 2].min()) > 0  # descending bends the neck forward (+z, the facing)
    assert satisfaction(parse_constraints("pitch 45"), pose.numpy())[0]["violation"] == pytest.approx(40.0, abs=1e-6)


def test_constraint_frames_must_lie_in_the_motion() -> None:
    with pytest.raises(ValueError, match="start after the motion's last frame 9"):
        frame_violations(parse_constraint("pitch 10 frames 12-20"), standing())
    end = frame_violations(parse_constraint("pitch 10 frames end"), standing())
    assert end.shape == (1,)


def test_satisfaction_report() -> None:
    pose = standing()
    lifted = pose.clone()
    lifted[5:, J["right_foot"], 1] += 0.3
    (row,) = satisfaction(parse_constraints("above right_foot 0.2"), lifted.numpy())
    assert row["constraint"] == "above right_foot 0.2" and row["unit"] == "m"
    foot = float(pose[0, J["right_foot"], 1])
    assert row["satisfied_fraction"] == 0.5 and row["violation"] == pytest.approx((0.2 - foot) / 2, abs=1e-6)


# ----------------------------------------------------------------------------- torch recovery

def known_features(frames: int = 41) -> np.ndarray:
    """Features (frames - 1, 263) of a body that walks, turns and swings its limbs."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, frames)[:, None, None]
    aa = 0.3 * np.sin(t + rng.uniform(0, 2 * np.pi, (1, 22, 3)))
    aa[:, 0, 1] = np.linspace(0, np.pi, frames)
    trans = np.stack([np.zeros(frames), np.full(frames, 0.95), np.linspace(0, 1.0, frames)], axis=-1)
    return extract_features(forward_kinematics(axis_angle_to_matrix(aa), trans).astype(np.float32))


def test_torch_recovery_equals_the_numpy_one() -> None:
    clips = [known_features()]
    clips += [np.load(p) for p in sorted(REFERENCE_VECS.glob("*.npy"))[:3]] if REFERENCE_VECS.is_dir() else []
    for features in clips:
        ours = recover_joints(torch.from_numpy(features.astype(np.float64))).numpy()
        assert np.abs(ours - recover_from_ric(features)).max() < 1e-5
        single = recover_joints(torch.from_numpy(features.astype(np.float32))).numpy()
        assert np.abs(single - recover_from_ric(features)).max() < 1e-4
    batch = np.stack([known_features(), known_features()[::-1].copy()])
    assert np.abs(recover_joints(torch.from_numpy(batch)).numpy() - recover_from_ric(batch)).max() < 1e-5


def test_packed_layout_and_denormalisation() -> None:
    features = torch.from_numpy(known_features())
    packed = pack_parts(split_parts(features))
    assert torch.equal(features_to_packed(features), packed) and torch.equal(packed_to_features(packed), features)
    mean, std = features.mean(0), features.std(0) + 0.1
    joints = packed_to_joints(features_to_packed((features - mean) / std), mean, std)
    assert np.abs(joints.numpy() - recover_from_ric(features.numpy())).max() < 1e-4


# ----------------------------------------------------------------------------- guidance in the sampler

def tiny_setup(batch: int = 3) -> tuple[LGTM, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """An untrained tiny LGTM, text latents, lengths, and a Mean/Std around a standing pose."""
    torch.manual_seed(0)
    model = LGTM(TINY).eval()
    rest = forward_kinematics(axis_angle_to_matrix(np.zeros((30, 22, 3))), np.tile([0.0, 0.9, 0.0], (30, 1)))
    mean = torch.from_numpy(extract_features(rest.astype(np.float32)).mean(0)).float()
    std = torch.full((FEATURE_DIM,), 0.1)
    text = torch.randn(batch, 7, TINY.text_dim, generator=torch.Generator().manual_seed(3))
    lengths = torch.tensor([24, 20, 16][:batch])
    return model, text, lengths, mean, std


GOAL = "near right_wrist left_shoulder 0.05 frames 4-12; above right_foot 0.2 frames 8-end; pitch 30"


def violations(parts: dict[str, torch.Tensor], lengths: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
               text: str = GOAL) -> np.ndarray:
    """Constraint loss per sampled motion."""
    joints = packed_to_joints(pack_parts(parts), mean, std)
    return np.array([float(constraint_loss(parse_constraints(text), joints[b, :int(n)]))
                     for b, n in enumerate(lengths)])


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++"])
def test_guidance_lowers_the_violation_with_the_same_noise(sampler: str) -> None:
    model, text, lengths, mean, std = tiny_setup()
    cfg = SamplingConfig(sampler, 6, 0.0, 1.0)
    plain = sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(1))
    guidance = MotionGuidance([parse_constraints(GOAL)] * 3, mean, std, strength=1.0, iterations=3)
    guided = sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(1), guidance=guidance)
    before, after = violations(plain, lengths, mean, std), violations(guided, lengths, mean, std)
    assert (before > 0.3).all() and (after < 0.1 * before).all(), (before, after)
    for p in PART_NAMES:  # still zero after each length
        assert all(not guided[p][b, int(n):].any() for b, n in enumerate(lengths))


def test_no_guidance_is_the_plain_sampler_bit_for_bit() -> None:
    model, text, lengths, mean, std = tiny_setup()
    for cfg in (SamplingConfig("ddim", 4, 0.0, 1.0), SamplingConfig("dpmsolver++", 4, 0.0, 1.0),
                SamplingConfig("ddim", 3, 0.5, 2.0)):
        def run(cfg: SamplingConfig = cfg, **kw: object) -> dict[str, torch.Tensor]:
            return sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(5), **kw)

        plain = run()
        for other in (run(guidance=None), run(guidance=lambda x0, t, mask: x0),
                      run(guidance=MotionGuidance([[], [], []], mean, std)),
                      run(guidance=MotionGuidance([parse_constraints(GOAL)] * 3, mean, std, strength=0.0))):
            assert all(torch.equal(plain[p], other[p]) for p in PART_NAMES)


@pytest.mark.parametrize("sampler, steps", [("ddim", 5), ("dpmsolver++", 5), ("dpmsolver++", 20)])
def test_inpainting_keeps_the_kept_parts_of_the_reference(sampler: str, steps: int) -> None:
    model, text, lengths, mean, std = tiny_setup()
    rng = np.random.default_rng(0)
    reference = mean.numpy() + std.numpy() * rng.standard_normal((24, FEATURE_DIM))
    packed = reference_parts(reference, mean.numpy(), std.numpy(), 24).expand(3, -1, -1)
    keep = ("torso", "left_leg", "right_leg")
    guidance = MotionGuidance([[], [], []], mean, std, reference=packed, keep_parts=keep)
    cfg = SamplingConfig(sampler, steps, 0.0, 1.0)
    out = sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(2), guidance=guidance)
    ref = split_parts(torch.from_numpy((reference - mean.numpy()) / std.numpy()).float())
    for b, n in enumerate(lengths.tolist()):
        for p in PART_NAMES:
            if p in keep:
                assert torch.allclose(out[p][b, :n], ref[p][:n], atol=1e-5), (p, b)
            else:
                assert (out[p][b, :n] - ref[p][:n]).abs().max() > 0.1
    plain = sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(out["right_arm"], plain["right_arm"])  # regenerated next to the kept parts
    with pytest.raises(ValueError, match="reference"):
        MotionGuidance([[]], mean, std, keep_parts=keep)
    with pytest.raises(ValueError, match="unknown part"):
        MotionGuidance([[]], mean, std, reference=packed, keep_parts=("tail",))


class SeededLatents:
    """Pseudo text latents, a function of the text."""

    dim, key, inputs = TINY.text_dim, "seeded", ()

    def encode(self, slot: str, texts: list[str]) -> np.ndarray:
        return np.stack([np.random.default_rng(len(t)).standard_normal(self.dim) for t in texts]).astype(np.float32)


def test_guided_study_sampler() -> None:
    model, _, _, mean, std = tiny_setup()
    generator = LGTMGenerator(model, mean.numpy(), std.numpy(), SeededLatents(), "cpu", batch_size=2)
    cfg = SamplingConfig("ddim", 4, 0.0, 1.0)
    prompts = ["a person bows", "a person touches the left shoulder", "a person stands"]
    parts = [{p: f"{p} moves {i}" for p in PART_NAMES} for i in range(3)]
    frames = [20, 24, 16]
    goal = "near right_wrist left_shoulder 0.05; pitch 20 frames 5-end"
    plain = study_sampler(generator, cfg)(prompts, parts, frames, 3)
    guided = guided_study_sampler(generator, cfg, 1.0)(prompts, parts, frames, 3, [goal, goal, ""])
    assert [g.shape for g in guided] == [(n, 22, 3) for n in frames]
    for a, b in zip(plain[:2], guided[:2]):
        before = constraint_loss(parse_constraints(goal), torch.from_numpy(a.astype(np.float64)))
        after = constraint_loss(parse_constraints(goal), torch.from_numpy(b.astype(np.float64)))
        assert float(after) < 0.5 * float(before)
    assert np.array_equal(plain[2], guided[2])  # no constraint: the unguided motion (same noise, same batch)
    with pytest.raises(ConstraintError, match="'hand'"):
        guided_study_sampler(generator, cfg, 1.0)(prompts, parts, frames, 3, ["above hand 1", "", ""])
    with pytest.raises(ValueError, match="start after"):
        guided_study_sampler(generator, cfg, 1.0)(prompts, parts, frames, 3, ["", "", "pitch 10 frames 18-20"])
    with pytest.raises(ValueError, match="2 constraint texts for 3 prompts"):
        guided_study_sampler(generator, cfg, 1.0)(prompts, parts, frames, 3, ["", ""])


def test_batched_guidance_equals_guiding_each_motion_alone() -> None:
    _, _, _, mean, std = tiny_setup()
    x0 = torch.randn(4, 24, FEATURE_DIM, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([24, 24, 16, 24])
    mask = torch.arange(24)[None] < lengths[:, None]
    goals = [parse_constraints(GOAL), parse_constraints(GOAL), parse_constraints(GOAL), parse_constraints("pitch 10")]
    together = MotionGuidance(goals, mean, std, iterations=2)(x0, torch.tensor(0), mask)
    for b in range(4):
        alone = MotionGuidance(goals[b:b + 1], mean, std, iterations=2)(x0[b:b + 1], torch.tensor(0), mask[b:b + 1])
        assert torch.allclose(together[b], alone[0], atol=1e-5)
        loss = constraint_loss(goals[b], packed_to_joints(together[b:b + 1, :int(lengths[b])], mean, std))
        before = constraint_loss(goals[b], packed_to_joints(x0[b:b + 1, :int(lengths[b])], mean, std))
        assert float(loss) < 0.5 * float(before)


def test_bone_lengths_and_keeping_them_under_guidance() -> None:
    from motion.core.skeleton import TARGET_OFFSETS

    assert np.allclose(bone_lengths(standing()).numpy(), np.linalg.norm(TARGET_OFFSETS[1:], axis=-1), atol=1e-6)
    model, text, lengths, mean, std = tiny_setup()
    cfg = SamplingConfig("ddim", 4, 0.0, 1.0)
    plain = packed_to_joints(pack_parts(sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(1))),
                             mean, std)
    change, violation = [], []
    for keep in (False, True):
        guidance = MotionGuidance([parse_constraints("pitch 45 frames 5-15")] * 3, mean, std, keep_bones=keep)
        parts = sample(model, text, lengths, cfg, generator=torch.Generator().manual_seed(1), guidance=guidance)
        joints = packed_to_joints(pack_parts(parts), mean, std)
        change.append(float((bone_lengths(joints) - bone_lengths(plain))[:, :16].abs().max()))
        violation.append(violations(parts, lengths, mean, std, "pitch 45 frames 5-15").max())
    assert change[1] < 0.7 * change[0], change
    assert max(violation) < 0.1, violation
