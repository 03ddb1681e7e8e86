"""Constraint and plausibility metrics on hand-built poses (forward kinematics of the target skeleton)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from motion.core.kinematics import axis_angle_to_matrix, forward_kinematics
from motion.core.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS, TARGET_OFFSETS, mirror_joints
from motion.study.constraints import (
    CONSTRAINTS,
    bone_length_drift,
    contact_fraction,
    foot_contact,
    foot_height,
    foot_lift,
    foot_skating_ratio,
    foot_sliding,
    foot_speed,
    forward_reach,
    ground_penetration,
    heading,
    is_floating,
    jerk,
    joint_distance,
    measure_constraint,
    planted_fraction,
    plausibility,
    put_on_floor,
    raise_then_touch_head,
    torso_pitch,
    torso_pitch_error,
    wrist_forward_reach,
    wrist_to_shoulder_distance,
)

J = JOINT_INDEX
DOWN = np.array([0.0, -1.0, 0.0])


def rot(axis: str, degrees: float) -> np.ndarray:
    """Axis-angle vector of a rotation about x, y or z."""
    v = np.zeros(3)
    v["xyz".index(axis)] = np.radians(degrees)
    return v


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Axis-angle of the smallest rotation taking direction a to direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-12:
        if c > 0:
            return np.zeros(3)
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 0.0, 1.0])
        return np.pi * perp / np.linalg.norm(perp)
    return axis / s * np.arctan2(s, c)


def pose(rotations: dict[int, np.ndarray] | None = None, root: np.ndarray | None = None) -> np.ndarray:
    """One frame (22, 3): FK of the target skeleton standing with its lowest rest joint on y = 0."""
    aa = np.zeros((NUM_JOINTS, 3))
    for joint, value in (rotations or {}).items():
        aa[joint] = value
    rest = forward_kinematics(axis_angle_to_matrix(np.zeros((NUM_JOINTS, 3))), np.zeros(3))
    translation = np.array([0.0, -rest[:, 1].min(), 0.0]) if root is None else root
    return forward_kinematics(axis_angle_to_matrix(aa), translation)


def clip(*frames: tuple[np.ndarray, int]) -> np.ndarray:
    """Motion (T, 22, 3) holding each pose for its number of frames."""
    return np.concatenate([np.repeat(p[None], n, axis=0) for p, n in frames])


def reach_with_arm(
    shoulder: int, elbow: int, wrist: int, target: np.ndarray, bend: np.ndarray
) -> dict[int, np.ndarray]:
    """Shoulder and elbow rotations (others at rest) putting ``wrist`` on ``target``: two-link IK,
    the elbow bent towards ``bend``."""
    rest = pose()
    s = rest[shoulder]
    a = np.linalg.norm(TARGET_OFFSETS[elbow].astype(np.float64))
    b = np.linalg.norm(TARGET_OFFSETS[wrist].astype(np.float64))
    delta = target - s
    d = np.linalg.norm(delta)
    assert abs(a - b) < d < a + b, "target out of reach"
    axis = delta / d
    side = bend - np.dot(bend, axis) * axis
    side /= np.linalg.norm(side)
    cos_t = (a * a + d * d - b * b) / (2 * a * d)
    upper = cos_t * axis + np.sqrt(1 - cos_t**2) * side
    elbow_pos = s + a * upper
    lower = (target - elbow_pos) / b
    r_shoulder = rotation_between(DOWN, upper)
    local = axis_angle_to_matrix(r_shoulder).T @ lower
    return {shoulder: r_shoulder, elbow: rotation_between(DOWN, local)}


# ------------------------------------------------------------------- geometry basics


def test_rest_pose_faces_plus_z_and_stands_on_the_floor():
    rest = pose()[None]
    np.testing.assert_allclose(heading(rest), [[0.0, 0.0, 1.0]], atol=1e-12)
    turned = pose({0: rot("y", 90)})[None]  # facing +z turned 90 degrees about y faces +x
    np.testing.assert_allclose(heading(turned), [[1.0, 0.0, 0.0]], atol=1e-12)
    assert ground_penetration(rest) == 0.0
    assert foot_height(rest, "left")[0] == pytest.approx(0.0, abs=1e-12)  # the longer leg touches the floor
    assert foot_contact(rest, "right")[0] and foot_contact(rest, "left")[0]


def test_input_validation():
    with pytest.raises(ValueError, match="shape"):
        torso_pitch(np.zeros((4, 21, 3)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        foot_sliding(pose()[None])
    bad = pose()[None].copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bone_length_drift(bad)
    with pytest.raises(ValueError, match="side"):
        foot_height(pose()[None], "middle")
    with pytest.raises(ValueError, match="unknown constraint"):
        measure_constraint("fly", pose()[None])


# --------------------------------------------------------------- prompt 1: touch shoulder


def test_wrist_placed_on_shoulder_gives_distance_zero():
    rest = pose()
    target = rest[J["left_shoulder"]]
    rotations = reach_with_arm(J["right_shoulder"], J["right_elbow"], J["right_wrist"], target, np.array([0, 0, 1.0]))
    touching = pose(rotations)
    assert np.linalg.norm(touching[J["right_wrist"]] - target) < 1e-9
    motion = clip((rest, 10), (touching, 5), (rest, 5))
    assert wrist_to_shoulder_distance(motion) == pytest.approx(0.0, abs=1e-9)
    # At rest the arm hangs down: the distance is that of the rest pose, far from 0.
    rest_distance = np.linalg.norm(rest[J["right_wrist"]] - target)
    assert wrist_to_shoulder_distance(clip((rest, 3))) == pytest.approx(rest_distance)
    assert rest_distance > 0.4
    np.testing.assert_allclose(joint_distance(motion, J["right_wrist"], J["left_shoulder"])[10:15], 0.0, atol=1e-9)


# ------------------------------------------------------------------- prompt 2: foot lift


def test_right_foot_lift_height_and_hold_time():
    rest = pose()
    # Thigh forward (hip -90 about x), shin back down (knee +90): the foot rises by the thigh length.
    lifted = pose({J["right_hip"]: rot("x", -90), J["right_knee"]: rot("x", 90)})
    thigh = np.linalg.norm(TARGET_OFFSETS[J["right_knee"]])
    motion = clip((rest, 10), (lifted, 20), (rest, 10))
    lift = foot_lift(motion, "right")
    expected_peak = foot_height(rest[None], "right")[0] + thigh
    assert lift.peak_height == pytest.approx(expected_peak, abs=1e-9)
    assert lift.hold_seconds == pytest.approx(1.0)  # 20 frames at 20 fps
    assert lift.support_planted_fraction == 1.0
    # Lifting only for 0.5 s, twice: the longest hold counts.
    twice = clip((rest, 5), (lifted, 10), (rest, 5), (lifted, 6), (rest, 5))
    assert foot_lift(twice, "right").hold_seconds == pytest.approx(0.5)


def test_foot_lift_needs_a_planted_support_foot():
    lifted = pose({J["right_hip"]: rot("x", -90), J["right_knee"]: rot("x", 90)})
    jumping = lifted + np.array([0.0, 0.3, 0.0])  # both feet in the air
    motion = clip((pose(), 5), (jumping, 20), (pose(), 5))
    lift = foot_lift(motion, "right")
    assert lift.hold_seconds == 0.0
    assert lift.support_planted_fraction == pytest.approx(10 / 30)


# ------------------------------------------------------- prompt 3: feet planted, reaching


def test_foot_sliding_and_skating_on_a_translated_pose():
    rest = pose()
    t = np.arange(20)[:, None, None]
    for speed, skating in ((1.0, 1.0), (0.2, 0.0)):
        gliding = rest[None] + t * np.array([speed / 20, 0.0, 0.0])  # whole body slides along x
        assert foot_sliding(gliding) == pytest.approx(speed)
        assert foot_skating_ratio(gliding) == pytest.approx(skating)
    still = clip((rest, 20))
    assert foot_sliding(still) == 0.0 and foot_skating_ratio(still) == 0.0
    # A one-step jerk of 10 cm (2 m/s) is averaged away over 5 steps; two consecutive ones skate.
    jerk = clip((rest, 20))
    jerk[10:] += np.array([0.1, 0.0, 0.0])
    assert foot_skating_ratio(jerk) == 0.0
    assert foot_sliding(jerk) == pytest.approx(2.0 / 19)
    jerk[11:] += np.array([0.1, 0.0, 0.0])
    assert foot_skating_ratio(jerk) == pytest.approx(2 / 19)
    # The same glide 0.3 m above the floor is not contact: no sliding to measure, and not a perfect 0.
    flying = rest[None] + t * np.array([0.05, 0.0, 0.0]) + np.array([0.0, 0.3, 0.0])
    assert foot_sliding(flying) is None


def test_put_on_floor_moves_the_lowest_foot_joint_to_zero():
    hovering = clip((pose(), 10)) + np.array([0.0, 0.4, 0.0])
    floored, offset = put_on_floor(hovering)
    assert offset == pytest.approx(0.4) and floored[..., 1].min() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(floored, clip((pose(), 10)), atol=1e-12)
    sunk, offset = put_on_floor(clip((pose(), 3)) - np.array([0.0, 0.1, 0.0]))
    assert offset == pytest.approx(-0.1) and ground_penetration(sunk) == pytest.approx(0.0, abs=1e-12)
    # the lowest *foot* joint decides: a hand below the feet stays below the floor and is penetration
    low = clip((pose(), 3))
    low[:, J["right_wrist"], 1] = -0.05
    down, offset = put_on_floor(low)
    assert offset == pytest.approx(0.0, abs=1e-12) and ground_penetration(down) == pytest.approx(0.05)


def test_robust_contact_needs_low_and_slow_feet_and_floating_is_flagged():
    rest = pose()
    t = np.arange(20)[:, None, None]
    still = clip((rest, 20))
    assert foot_contact(still, "left").all() and contact_fraction(still) == 1.0 and not is_floating(still)
    assert planted_fraction(still) == 1.0
    gliding = rest[None] + t * np.array([0.5 / 20, 0.0, 0.0])  # low but moving 0.5 m/s: not in contact
    assert not foot_contact(gliding, "left").any() and is_floating(gliding)
    assert planted_fraction(gliding) == 0.0 and foot_speed(gliding, "left") == pytest.approx(np.full(20, 0.5))
    p = plausibility(gliding)
    assert p["floating"] == 1.0 and p["foot_sliding"] is None and p["contact_fraction"] == 0.0
    # one foot kicking on a still support foot: in contact (the support foot), not floating, not planted
    kick = clip((rest, 20))
    kick[:, [J["right_ankle"], J["right_foot"]]] += np.sin(np.arange(20) * 1.3)[:, None, None] * np.array(
        [0.1, 0.2, 0.0])
    assert not is_floating(kick) and planted_fraction(kick) < 0.5
    assert measure_constraint("planted_reach", gliding)["planted_fraction"] == 0.0  # a floating clip cannot win
    assert measure_constraint("planted_reach", gliding)["foot_sliding"] is None


def test_jerk_of_polynomial_motions():
    t = (np.arange(20) / 20.0)[:, None, None]
    constant_acceleration = clip((pose(), 20)) + 0.5 * 2.0 * t**2 * np.array([1.0, 0.0, 0.0])
    assert jerk(constant_acceleration) == pytest.approx(0.0, abs=1e-6)
    cubic = clip((pose(), 20)) + t**3 * np.array([1.0, 0.0, 0.0])  # third derivative 6 m/s^3 for every joint
    assert jerk(cubic) == pytest.approx(6.0, rel=1e-6)
    assert jerk(clip((pose(), 3))) == 0.0


def test_hand_height_and_knee_to_chest():
    raised = pose({J["right_shoulder"]: rot("z", -180)})  # right arm straight up
    arm = np.linalg.norm(TARGET_OFFSETS[J["right_elbow"]]) + np.linalg.norm(TARGET_OFFSETS[J["right_wrist"]])
    numbers = measure_constraint("hand_height", clip((pose(), 10), (raised, 10)))
    expected = pose()[J["right_shoulder"], 1] + arm - pose()[J["head"], 1]
    assert numbers["peak_above_head"] == pytest.approx(expected, abs=1e-9)
    assert numbers["seconds_above_head"] == pytest.approx(0.5)
    assert measure_constraint("hand_height", clip((pose(), 3)))["peak_above_head"] < 0
    knee_up = pose({J["right_hip"]: rot("x", -120), J["right_knee"]: rot("x", 120)})
    rest_distance = measure_constraint("knee_to_chest", clip((pose(), 3)))["min_distance"]
    up = measure_constraint("knee_to_chest", clip((pose(), 5), (knee_up, 5)))
    assert up["min_distance"] < rest_distance - 0.2 and up["peak_knee_height"] > 0


def test_forward_reach_of_straight_arms_is_arm_length_and_heading_invariant():
    forward = {J["left_shoulder"]: rot("x", -90), J["right_shoulder"]: rot("x", -90)}  # arms point +z
    arms = pose(forward)
    left_len = np.linalg.norm(TARGET_OFFSETS[J["left_elbow"]]) + np.linalg.norm(TARGET_OFFSETS[J["left_wrist"]])
    right_len = np.linalg.norm(TARGET_OFFSETS[J["right_elbow"]]) + np.linalg.norm(TARGET_OFFSETS[J["right_wrist"]])
    assert forward_reach(arms[None], J["left_wrist"])[0] == pytest.approx(left_len)
    motion = clip((pose(), 5), (arms, 5))
    assert wrist_forward_reach(motion) == pytest.approx((left_len + right_len) / 2)
    assert wrist_forward_reach(clip((pose(), 3))) == pytest.approx(0.0, abs=1e-12)
    # Turned 90 degrees and moved: the reach along the new heading is the same.
    turned = pose({**forward, 0: rot("y", 90)}, root=np.array([3.0, 0.9, -2.0]))
    assert wrist_forward_reach(turned[None]) == pytest.approx((left_len + right_len) / 2)


# -------------------------------------------------------------------- prompt 4: torso pitch


def test_torso_pitched_45_degrees_measures_45():
    # Bend at the hips: pelvis tilted 45 degrees forward, hips counter-rotated so the legs stay vertical.
    bent = pose({0: rot("x", 45), J["left_hip"]: rot("x", -45), J["right_hip"]: rot("x", -45)})
    assert torso_pitch(bent[None])[0] == pytest.approx(45.0, abs=1e-9)
    assert foot_height(bent[None], "left")[0] == pytest.approx(0.0, abs=1e-9)  # feet stay on the floor
    # Bend in the spine: the spine1 -> neck segment pitches 45 degrees.
    spine = pose({J["spine1"]: rot("x", 45)})
    assert torso_pitch(spine[None], lower=J["spine1"])[0] == pytest.approx(45.0, abs=1e-9)
    # Upright is 0, leaning back is negative, and the heading does not matter.
    assert torso_pitch(pose()[None])[0] == pytest.approx(0.0, abs=1e-9)
    assert torso_pitch(pose({0: rot("x", -20)})[None])[0] == pytest.approx(-20.0, abs=1e-9)
    # The angle is from vertical: a sideways lean of 30 degrees measures 30.
    assert abs(torso_pitch(pose({0: rot("z", 30)})[None])[0]) == pytest.approx(30.0, abs=1e-9)
    yaw_then_pitch = axis_angle_to_matrix(rot("y", 130)) @ axis_angle_to_matrix(rot("x", 45))
    turned = pose({0: _matrix_to_axis_angle(yaw_then_pitch)})
    assert torso_pitch(turned[None])[0] == pytest.approx(45.0, abs=1e-6)
    motion = clip((pose(), 5), (pose({0: rot("x", 30)}), 5), (bent, 5), (pose(), 5))
    peak, error = torso_pitch_error(motion)
    assert peak == pytest.approx(45.0, abs=1e-9) and error == pytest.approx(0.0, abs=1e-9)
    assert torso_pitch_error(clip((pose({0: rot("x", 30)}), 3)))[1] == pytest.approx(15.0, abs=1e-9)


def _matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    angle = np.arccos(np.clip((np.trace(m) - 1) / 2, -1, 1))
    axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]]) / (2 * np.sin(angle))
    return axis * angle


# ----------------------------------------------------------- prompt 5: raise, then touch head


def _raise_and_touch_poses() -> tuple[np.ndarray, np.ndarray]:
    raised = pose({J["left_shoulder"]: rot("z", 180)})  # left arm straight up
    head = pose()[J["head"]]
    touch = pose(reach_with_arm(J["left_shoulder"], J["left_elbow"], J["left_wrist"],
                                head + np.array([0.1, -0.02, 0.0]), np.array([1.0, 0.0, 0.0])))
    return raised, touch


def test_raise_then_touch_in_order():
    raised, touch = _raise_and_touch_poses()
    assert raised[J["left_wrist"], 1] > raised[J["head"], 1]
    motion = clip((pose(), 10), (raised, 10), (touch, 10))
    r = raise_then_touch_head(motion, "left")
    assert r.order_holds
    assert r.raise_time == pytest.approx(0.5) and r.touch_time == pytest.approx(1.0)
    assert r.end_distance == pytest.approx(np.hypot(0.1, 0.02), abs=1e-9)
    assert r.peak_above_head > 0


def test_raise_then_touch_wrong_order_or_missing_event():
    raised, touch = _raise_and_touch_poses()
    reverse = raise_then_touch_head(clip((pose(), 5), (touch, 10), (raised, 10)))
    assert not reverse.order_holds and reverse.touch_time is None and reverse.raise_time == pytest.approx(0.75)
    no_raise = raise_then_touch_head(clip((pose(), 5), (touch, 10)))
    assert not no_raise.order_holds and no_raise.raise_time is None and no_raise.touch_time == pytest.approx(0.25)
    # Touching first, then raising, then touching again: the raise precedes the final touch.
    again = raise_then_touch_head(clip((touch, 5), (raised, 5), (touch, 5)))
    assert again.order_holds and again.touch_time == pytest.approx(0.5)


# ------------------------------------------------------------------------ plausibility


def test_ground_penetration_and_bone_length_drift():
    rng = np.random.default_rng(0)
    frames = [pose({j: rng.normal(scale=0.4, size=3) for j in range(1, NUM_JOINTS)}) for _ in range(8)]
    motion = np.stack(frames)
    assert bone_length_drift(motion) == pytest.approx(0.0, abs=1e-12)  # FK keeps bone lengths
    sunk = clip((pose(), 4)) - np.array([0.0, 0.03, 0.0])
    assert ground_penetration(sunk) == pytest.approx(0.03)
    # Stretch the left forearm by 10% in every other frame: that bone's relative std is 0.05 / 1.05.
    stretched = clip((pose(), 4))
    w, e = J["left_wrist"], J["left_elbow"]
    stretched[1::2, w] = stretched[1::2, e] + 1.1 * (stretched[1::2, w] - stretched[1::2, e])
    assert PARENTS[w] == e
    assert bone_length_drift(stretched) == pytest.approx((0.05 / 1.05) / (NUM_JOINTS - 1))
    p = plausibility(stretched)
    assert set(p) == {"foot_sliding", "foot_skating_ratio", "ground_penetration", "bone_length_drift", "jerk",
                      "contact_fraction", "floating"}


def test_constraint_registry_measures_each_prompt():
    raised, touch = _raise_and_touch_poses()
    motion = clip((pose(), 10), (raised, 10), (touch, 10))
    assert set(CONSTRAINTS) == {"touch_shoulder", "foot_lift", "planted_reach", "torso_pitch", "raise_then_touch",
                                "hand_height", "knee_to_chest"}
    assert [c.name for c in CONSTRAINTS.values() if c.binary] == ["raise_then_touch"]
    for name, constraint in CONSTRAINTS.items():
        values = measure_constraint(name, motion)
        assert constraint.primary in values
        assert all(v is None or np.isfinite(v) for v in values.values()), name
    assert measure_constraint("raise_then_touch", motion)["order_holds"] == 1.0


# ---------------------------------------------------------------- real HumanML3D motions

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "humanml3d" / "joints"


def test_real_motions_are_plausible_and_mirror_symmetric():
    files = sorted(REFERENCE.glob("*.npy")) if REFERENCE.is_dir() else []
    if not files:
        pytest.skip(f"reference joints not found at {REFERENCE}")
    for path in files:
        joints = np.load(path).astype(np.float64)
        p = plausibility(joints)
        assert p["ground_penetration"] == 0.0  # HumanML3D puts the lowest joint on the floor
        assert p["bone_length_drift"] < 1e-4  # retargeted to one rigid skeleton
        assert 0.0 <= p["foot_skating_ratio"] <= 1.0 and p["foot_sliding"] < 1.0
        mirrored = mirror_joints(joints)
        for key, value in plausibility(mirrored).items():
            assert value == pytest.approx(p[key], abs=1e-9), (path.name, key)
        np.testing.assert_allclose(torso_pitch(mirrored), torso_pitch(joints), atol=1e-6)
        assert wrist_forward_reach(mirrored) == pytest.approx(wrist_forward_reach(joints), abs=1e-9)
        assert foot_lift(mirrored, "right") == foot_lift(joints, "left")
        distance = wrist_to_shoulder_distance(joints)
        assert wrist_to_shoulder_distance(mirrored, "left", "right") == pytest.approx(distance)
