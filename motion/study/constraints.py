"""Spatial-constraint and physical-plausibility metrics of a motion, for the IK-vs-FK prompt study.

Every function reads joint positions ``joints`` of shape (T, 22, 3) in HumanML3D's frame: y up,
metres, the floor at y = ``ground`` (0 after HumanML3D's processing), 20 frames per second by
default. The facing direction ("heading") is HumanML3D's: the horizontal vector perpendicular to
the hips' and shoulders' right-to-left line (``motion.core.skeleton.FACE_JOINTS``).
``CONSTRAINTS`` names the measure of each study prompt and which of its numbers decides the winner.

A generated clip is first put on the floor (``put_on_floor``: its lowest foot joint over the clip to y = 0;
HumanML3D floors the lowest joint of any kind, which is the same for a standing clip, but flooring by the
feet keeps a hand or knee below the floor measurable as penetration). Contact is robust: a foot touches
the floor in a frame when its lowest joint is below ``CONTACT_HEIGHT`` *and* moves horizontally slower than
``CONTACT_SPEED``. A clip with a foot in contact in fewer than ``MIN_CONTACT_FRACTION`` of its frames is
*floating*: its foot sliding is undefined (None, never 0) and it cannot satisfy a "feet planted" goal.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from motion.core.skeleton import FACE_JOINTS, FOOT_JOINTS, JOINT_INDEX, LEFT_FOOT, NUM_JOINTS, PARENTS, RIGHT_FOOT

FPS = 20.0
CONTACT_HEIGHT = 0.05  # m: a foot joint lower than this can be in contact with the floor
CONTACT_SPEED = 0.2  # m/s: ... if it also moves horizontally slower than this (1 cm per frame at 20 fps)
MIN_CONTACT_FRACTION = 0.1  # a clip with a foot in contact in fewer of its frames than this is floating
LIFT_HEIGHT = 0.10  # m: a foot higher than this is lifted
SKATE_SPEED = 0.5  # m/s: horizontal speed of a foot in contact that counts as skating (2.5 cm per frame at 20 fps)
SKATE_WINDOW = 5  # steps over which the skating speed is also averaged
TOE_JOINTS: tuple[int, int] = (LEFT_FOOT[1], RIGHT_FOOT[1])
TOUCH_DISTANCE = 0.20  # m: a wrist this close to the head joint is on the head

PELVIS, NECK, HEAD, CHEST = JOINT_INDEX["pelvis"], JOINT_INDEX["neck"], JOINT_INDEX["head"], JOINT_INDEX["spine3"]
SIDES = ("left", "right")


def _check_joints(joints: np.ndarray, min_frames: int = 1) -> np.ndarray:
    """Validate (T, 22, 3) joint positions and convert them to float64."""
    x = np.asarray(joints, dtype=np.float64)
    if x.ndim != 3 or x.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected joint positions of shape (T, {NUM_JOINTS}, 3), got {x.shape}")
    if x.shape[0] < min_frames:
        raise ValueError(f"needs at least {min_frames} frames, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError("joint positions contain NaN or inf")
    return x


def _side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    return side


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, end) frame ranges of the True runs of a boolean (T,) mask."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


# --------------------------------------------------------------------- basic geometry


def heading(joints: np.ndarray) -> np.ndarray:
    """Unit horizontal facing direction (T, 3) from hips and shoulders (zero when undefined)."""
    x = _check_joints(joints)
    r_hip, l_hip, r_sh, l_sh = FACE_JOINTS
    across = (x[:, r_hip] - x[:, l_hip]) + (x[:, r_sh] - x[:, l_sh])
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    forward[:, 1] = 0.0
    norm = np.linalg.norm(forward, axis=1, keepdims=True)
    return np.where(norm > 1e-9, forward / np.maximum(norm, 1e-12), 0.0)


def joint_distance(joints: np.ndarray, a: int, b: int) -> np.ndarray:
    """Distance (T,) in metres between joints ``a`` and ``b`` in every frame."""
    x = _check_joints(joints)
    return np.linalg.norm(x[:, a] - x[:, b], axis=1)


def wrist_to_shoulder_distance(joints: np.ndarray, wrist: str = "right", shoulder: str = "left") -> float:
    """Closest approach (m) of one wrist to the opposite shoulder over the motion (prompt 1)."""
    a = JOINT_INDEX[f"{_side(wrist)}_wrist"]
    b = JOINT_INDEX[f"{_side(shoulder)}_shoulder"]
    return float(joint_distance(joints, a, b).min())


# ------------------------------------------------------------------------------- feet


def foot_height(joints: np.ndarray, side: str, ground: float = 0.0) -> np.ndarray:
    """Height (T,) above the floor of the lowest of a foot's joints (ankle, toe)."""
    x = _check_joints(joints)
    idx = list(LEFT_FOOT if _side(side) == "left" else RIGHT_FOOT)
    return x[:, idx, 1].min(axis=1) - ground


def put_on_floor(joints: np.ndarray) -> tuple[np.ndarray, float]:
    """The clip moved vertically so that its lowest foot joint over all frames is at y = 0, and the shift's
    source: the height (m) the lowest foot joint had (positive: the clip floated, negative: it sank)."""
    x = _check_joints(joints)
    offset = float(x[:, list(FOOT_JOINTS), 1].min())
    return x - np.array([0.0, offset, 0.0]), offset


def foot_speed(joints: np.ndarray, side: str, fps: float = FPS) -> np.ndarray:
    """Horizontal speed (T,) in m/s of the mean of a foot's joints (ankle, toe) over the step into each frame
    (frame 0 takes the first step's; a one-frame clip is still)."""
    x = _check_joints(joints)
    idx = list(LEFT_FOOT if _side(side) == "left" else RIGHT_FOOT)
    centre = x[:, idx].mean(axis=1)
    if x.shape[0] < 2:
        return np.zeros(x.shape[0])
    step = np.hypot(*(np.diff(centre[:, [0, 2]], axis=0).T)) * fps
    return np.concatenate([step[:1], step])


def foot_contact(
    joints: np.ndarray, side: str, height_threshold: float = CONTACT_HEIGHT, ground: float = 0.0,
    speed_threshold: float = CONTACT_SPEED, fps: float = FPS,
) -> np.ndarray:
    """Boolean (T,): the foot touches the floor (lowest joint below ``height_threshold`` and horizontal speed
    below ``speed_threshold``)."""
    return (foot_height(joints, side, ground) < height_threshold) & (foot_speed(joints, side, fps) < speed_threshold)


def contact_fraction(joints: np.ndarray, ground: float = 0.0, fps: float = FPS) -> float:
    """Share of frames in which at least one foot is in contact with the floor."""
    left = foot_contact(joints, "left", ground=ground, fps=fps)
    either = left | foot_contact(joints, "right", ground=ground, fps=fps)
    return float(either.mean())


def is_floating(joints: np.ndarray, ground: float = 0.0, fps: float = FPS) -> bool:
    """True when a foot is in contact in fewer than ``MIN_CONTACT_FRACTION`` of the frames."""
    return contact_fraction(joints, ground, fps) < MIN_CONTACT_FRACTION


def planted_fraction(joints: np.ndarray, ground: float = 0.0, fps: float = FPS) -> float:
    """Share of frames with both feet in contact with the floor (0 for a floating clip)."""
    if is_floating(joints, ground, fps):
        return 0.0
    both = foot_contact(joints, "left", ground=ground, fps=fps) & foot_contact(joints, "right", ground=ground, fps=fps)
    return float(both.mean())


@dataclass(frozen=True)
class FootLift:
    """Prompt 2: how high and how long one foot is lifted while the other stays planted."""

    peak_height: float  # m, highest the lifted foot gets
    hold_seconds: float  # longest stretch with the foot lifted and the other foot planted
    support_planted_fraction: float  # share of all frames with the support foot in contact


def foot_lift(
    joints: np.ndarray,
    side: str = "right",
    lift_threshold: float = LIFT_HEIGHT,
    contact_threshold: float = CONTACT_HEIGHT,
    ground: float = 0.0,
    fps: float = FPS,
) -> FootLift:
    """Peak height of the ``side`` foot, and how long it stays above ``lift_threshold`` on a planted support foot."""
    lifted_height = foot_height(joints, side, ground)
    support = "left" if _side(side) == "right" else "right"
    planted = foot_contact(joints, support, contact_threshold, ground, fps=fps)
    runs = _runs((lifted_height > lift_threshold) & planted)
    longest = max((end - start for start, end in runs), default=0)
    return FootLift(float(lifted_height.max()), longest / fps, float(planted.mean()))


def _contact_horizontal_speed(
    joints: np.ndarray, foot_joints: tuple[int, ...], height_threshold: float, ground: float, fps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal speeds (T-1, J) of foot joints and a mask of steps spent in contact at both ends."""
    x = _check_joints(joints, min_frames=2)[:, list(foot_joints)]
    low = x[..., 1] - ground < height_threshold
    contact = low[1:] & low[:-1]
    step = x[1:] - x[:-1]
    speed = np.hypot(step[..., 0], step[..., 2]) * fps
    return speed, contact


def foot_sliding(
    joints: np.ndarray,
    foot_joints: tuple[int, ...] = FOOT_JOINTS,
    height_threshold: float = CONTACT_HEIGHT,
    ground: float = 0.0,
    fps: float = FPS,
) -> float | None:
    """Mean horizontal speed (m/s) of foot joints over the steps they spend low (None if they never are low:
    a clip that never touches the floor has no sliding to measure, and must not score a perfect 0)."""
    speed, contact = _contact_horizontal_speed(joints, foot_joints, height_threshold, ground, fps)
    return float(speed[contact].mean()) if contact.any() else None


def foot_skating_ratio(
    joints: np.ndarray,
    foot_joints: tuple[int, ...] = TOE_JOINTS,
    height_threshold: float = CONTACT_HEIGHT,
    skate_speed: float = SKATE_SPEED,
    window: int = SKATE_WINDOW,
    ground: float = 0.0,
    fps: float = FPS,
) -> float:
    """Share of frame steps in which a foot in contact skates (GMD's foot skating ratio).

    A step skates when the toe joint is below ``height_threshold`` at both ends, and both its
    horizontal speed and that speed averaged over a centred ``window`` of steps (zero-padded at the
    ends) exceed ``skate_speed``; a one-frame jitter does not count.
    """
    speed, contact = _contact_horizontal_speed(joints, foot_joints, height_threshold, ground, fps)
    averaged = scipy.ndimage.uniform_filter1d(speed, size=window, axis=0, mode="constant", origin=0)
    return float((contact & (speed > skate_speed) & (averaged > skate_speed)).any(axis=1).mean())


# ---------------------------------------------------------------------- upper body


def forward_reach(joints: np.ndarray, joint: int) -> np.ndarray:
    """Horizontal distance (T,) of ``joint`` in front of the pelvis along the heading (negative: behind)."""
    x = _check_joints(joints)
    offset = x[:, joint] - x[:, PELVIS]
    return (offset * heading(x)).sum(axis=1)


def wrist_forward_reach(joints: np.ndarray) -> float:
    """Prompt 3: peak over time of the mean forward reach (m) of both wrists."""
    reach = (forward_reach(joints, JOINT_INDEX["left_wrist"]) + forward_reach(joints, JOINT_INDEX["right_wrist"])) / 2
    return float(reach.max())


def torso_pitch(joints: np.ndarray, lower: int = PELVIS, upper: int = NECK) -> np.ndarray:
    """Pitch (T,) in degrees: angle of the ``lower``->``upper`` vector from vertical, negative when leaning back.

    0 is upright, 90 horizontal, 180 upside down; the sign is that of the vector's component along
    the heading, so a slightly off heading (asymmetric shoulders) does not change the angle.
    """
    x = _check_joints(joints)
    v = x[:, upper] - x[:, lower]
    angle = np.degrees(np.arctan2(np.hypot(v[:, 0], v[:, 2]), v[:, 1]))
    return np.where((v * heading(x)).sum(axis=1) < 0, -angle, angle)


def torso_pitch_error(joints: np.ndarray, target: float = 45.0) -> tuple[float, float]:
    """Prompt 4: peak forward torso pitch (degrees) and its absolute error from ``target``."""
    peak = float(torso_pitch(joints).max())
    return peak, abs(peak - target)


@dataclass(frozen=True)
class RaiseThenTouch:
    """Prompt 5: the wrist goes above the head, then ends resting on the head, in that order."""

    order_holds: bool
    raise_time: float | None  # s, first frame with the wrist above the head
    touch_time: float | None  # s, start of the final stretch with the wrist on the head (None if it ends off it)
    end_distance: float  # m, wrist to head at the last frame
    peak_above_head: float  # m, highest wrist height above the head joint


def raise_then_touch_head(
    joints: np.ndarray,
    side: str = "left",
    above_margin: float = 0.0,
    touch_distance: float = TOUCH_DISTANCE,
    fps: float = FPS,
) -> RaiseThenTouch:
    """Whether the wrist is raised above the head before the final stretch in which it rests on the head."""
    x = _check_joints(joints)
    wrist = JOINT_INDEX[f"{_side(side)}_wrist"]
    above = x[:, wrist, 1] - x[:, HEAD, 1]
    distance = joint_distance(x, wrist, HEAD)
    raised = np.flatnonzero(above > above_margin)
    raise_frame = int(raised[0]) if raised.size else None
    runs = _runs(distance < touch_distance)
    touch_frame = runs[-1][0] if runs and runs[-1][1] == x.shape[0] else None
    holds = raise_frame is not None and touch_frame is not None and raise_frame < touch_frame
    return RaiseThenTouch(
        order_holds=bool(holds),
        raise_time=None if raise_frame is None else raise_frame / fps,
        touch_time=None if touch_frame is None else touch_frame / fps,
        end_distance=float(distance[-1]),
        peak_above_head=float(above.max()),
    )


# ------------------------------------------------------------------ plausibility


def ground_penetration(joints: np.ndarray, ground: float = 0.0) -> float:
    """Depth (m) of the lowest joint below the floor over the motion (0 when nothing goes below)."""
    x = _check_joints(joints)
    return float(max(ground - x[..., 1].min(), 0.0))


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Length (T, 21) of every bone (joint j to its parent, j = 1..21) in every frame."""
    x = _check_joints(joints)
    child = np.arange(1, NUM_JOINTS)
    parent = np.array(PARENTS[1:])
    return np.linalg.norm(x[:, child] - x[:, parent], axis=2)


def bone_length_drift(joints: np.ndarray) -> float:
    """Mean over bones of the relative std (std / mean) of the bone's length over time (0 for a rigid skeleton)."""
    lengths = bone_lengths(joints)
    return float((lengths.std(axis=0) / np.maximum(lengths.mean(axis=0), 1e-9)).mean())


def jerk(joints: np.ndarray, fps: float = FPS) -> float:
    """Mean magnitude (m/s^3) of the third time derivative of the joint positions (0 for fewer than 4 frames)."""
    x = _check_joints(joints)
    if x.shape[0] < 4:
        return 0.0
    return float(np.linalg.norm(np.diff(x, n=3, axis=0), axis=2).mean() * fps**3)


def plausibility(joints: np.ndarray, fps: float = FPS, ground: float = 0.0) -> dict[str, float | None]:
    """Foot sliding (None when floating), skating ratio, ground penetration, bone length drift, jerk, the share of
    frames in contact and the floating flag (1.0 / 0.0) of one motion already on the floor."""
    floating = is_floating(joints, ground, fps)
    return {
        "foot_sliding": None if floating else foot_sliding(joints, fps=fps, ground=ground),
        "foot_skating_ratio": foot_skating_ratio(joints, fps=fps, ground=ground),
        "ground_penetration": ground_penetration(joints, ground=ground),
        "bone_length_drift": bone_length_drift(joints),
        "jerk": jerk(joints, fps),
        "contact_fraction": contact_fraction(joints, ground, fps),
        "floating": float(floating),
    }


# ------------------------------------------------------------- the study's constraints


@dataclass(frozen=True)
class Constraint:
    """One prompt pair's measure: ``measure(joints, fps)`` -> named numbers; ``primary`` decides the winner
    (``binary``: it is 0 or 1, a success, compared by Fisher's exact test)."""

    name: str
    description: str
    primary: str
    higher_is_better: bool
    measure: Callable[[np.ndarray, float], dict[str, float | None]]
    binary: bool = False


def _measure_touch_shoulder(joints: np.ndarray, fps: float) -> dict[str, float]:
    return {"min_distance": wrist_to_shoulder_distance(joints)}


def _measure_foot_lift(joints: np.ndarray, fps: float) -> dict[str, float]:
    lift = foot_lift(joints, "right", fps=fps)
    return {
        "peak_height": lift.peak_height,
        "hold_seconds": lift.hold_seconds,
        "support_planted_fraction": lift.support_planted_fraction,
    }


def _measure_planted_reach(joints: np.ndarray, fps: float) -> dict[str, float | None]:
    floating = is_floating(joints, fps=fps)
    return {"planted_fraction": planted_fraction(joints, fps=fps), "forward_reach": wrist_forward_reach(joints),
            "foot_sliding": None if floating else foot_sliding(joints, fps=fps)}


def _measure_torso_pitch(joints: np.ndarray, fps: float) -> dict[str, float]:
    peak, error = torso_pitch_error(joints, 45.0)
    return {"peak_pitch": peak, "pitch_error": error}


def _measure_raise_then_touch(joints: np.ndarray, fps: float) -> dict[str, float | None]:
    r = raise_then_touch_head(joints, "left", fps=fps)
    return {
        "order_holds": float(r.order_holds),
        "raise_time": r.raise_time,  # None when the event never happens
        "touch_time": r.touch_time,
        "end_distance": r.end_distance,
        "peak_above_head": r.peak_above_head,
    }


def _measure_hand_height(joints: np.ndarray, fps: float) -> dict[str, float]:
    x = _check_joints(joints)
    above = x[:, JOINT_INDEX["right_wrist"], 1] - x[:, HEAD, 1]
    return {"peak_above_head": float(above.max()), "seconds_above_head": float((above > 0).sum() / fps)}


def _measure_knee_to_chest(joints: np.ndarray, fps: float) -> dict[str, float]:
    knee = JOINT_INDEX["right_knee"]
    x = _check_joints(joints)
    return {"min_distance": float(joint_distance(x, knee, CHEST).min()),
            "peak_knee_height": float((x[:, knee, 1] - x[:, PELVIS, 1]).max())}


CONSTRAINTS: dict[str, Constraint] = {
    c.name: c
    for c in (
        Constraint("touch_shoulder", "min distance right wrist to left shoulder (m)", "min_distance", False,
                   _measure_touch_shoulder),
        Constraint("foot_lift", "right foot height and time held up with the left foot planted", "hold_seconds", True,
                   _measure_foot_lift),
        Constraint("planted_reach", "share of frames with both feet planted (0 if floating), while reaching forward",
                   "planted_fraction", True, _measure_planted_reach),
        Constraint("torso_pitch", "peak torso pitch and its error from 45 degrees", "pitch_error", False,
                   _measure_torso_pitch),
        Constraint("raise_then_touch", "left wrist above the head, then resting on the head at the end",
                   "order_holds", True, _measure_raise_then_touch, binary=True),
        Constraint("hand_height", "peak height of the right wrist above the head (m)", "peak_above_head", True,
                   _measure_hand_height),
        Constraint("knee_to_chest", "min distance right knee to the chest (spine3, m)", "min_distance", False,
                   _measure_knee_to_chest),
    )
}


def measure_constraint(name: str, joints: np.ndarray, fps: float = FPS) -> dict[str, float | None]:
    """Numbers of the study constraint ``name`` (a key of ``CONSTRAINTS``) for one motion (None: event absent)."""
    if name not in CONSTRAINTS:
        raise ValueError(f"unknown constraint {name!r}; known: {sorted(CONSTRAINTS)}")
    return CONSTRAINTS[name].measure(joints, fps)
