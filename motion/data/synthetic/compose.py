"""Whole-body composition: place part actions on a time line, pose the body, ground it, export AMASS.

A motion is one action alone ("single"), two actions on disjoint body parts at the same time
("simultaneous") or one after the other ("sequential"). The body is posed in the canonical y-up
frame; the root height puts the lowest foot joint on the floor (plus the lift of a jump) and the
root moves horizontally so that the foot in contact stays planted. The result is exported as AMASS
SMPL+H axis-angle ``poses`` and ``trans`` in AMASS's z-up world.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motion.core.kinematics import forward_kinematics
from motion.core.skeleton import FOOT_JOINTS
from motion.data.synthetic.actions import ACTIONS, Action
from motion.data.synthetic.body import Body
from motion.data.synthetic.curves import matrix_to_axis_angle, rot_x, rot_y
from motion.data.synthetic.track import Segment, Track

FPS = 20  # HumanML3D's frame rate: clip times are multiples of 1/20 s
MIN_SECONDS, MAX_SECONDS = 2.0, 9.8  # 40..196 frames at 20 fps
COMPOSITIONS = ("single", "simultaneous", "sequential")
# Canonical y-up -> AMASS z-up (+y -> +z): AMASS's root_orient carries this rotation.
Y_UP_TO_Z_UP = rot_x(np.array(np.pi / 2))
# Which action leads a caption: legs first ("walks while waving"), then torso, arms, head.
_CAPTION_ORDER = {"locomotion": 0, "legs": 0, "kick": 1, "torso": 2, "arm": 3, "arms": 3, "head": 4}


@dataclass
class MotionSpec:
    """What a motion does: its composition, its segments (clip seconds) and the clip duration."""

    composition: str
    segments: list[Segment]
    duration: float

    @property
    def frames(self) -> int:
        """Clip length at 20 fps."""
        return int(round(self.duration * FPS))


def compatible(a: Action, b: Action, simultaneous: bool) -> bool:
    """Whether two actions can share one motion: disjoint parts, and nothing odd when simultaneous."""
    if set(a.parts) & set(b.parts):
        return False
    if not simultaneous:
        return True
    groups = {a.group, b.group}
    if (a.mobile and b.group == "torso") or (b.mobile and a.group == "torso"):
        return False  # no bending or twisting while walking, jumping or kicking
    if "head" in groups and ({a.name, b.name} & {"touch_head_left", "touch_head_right"}):
        return False  # a hand on the head while the head moves
    return True


def caption_order(segments: list[Segment], composition: str) -> list[Segment]:
    """Segments in the order a caption names them (time order, or legs-first when simultaneous)."""
    if composition == "sequential":
        return sorted(segments, key=lambda s: s.start)
    return sorted(segments, key=lambda s: (_CAPTION_ORDER[ACTIONS[s.action].group], s.start))


def sample_motion(rng: np.random.Generator, composition: str, first: str | None = None) -> MotionSpec:
    """Draw a motion of ``composition``; ``first`` fixes its first action (else it is drawn)."""
    names = sorted(ACTIONS)
    a = ACTIONS[first] if first else ACTIONS[names[int(rng.integers(len(names)))]]
    lead, tail = float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.2, 0.6))
    budget = MAX_SECONDS - lead - tail - 0.05
    if composition == "single":
        pa = a.sample(rng, budget)
        segments = [Segment(a.name, lead, lead + pa["duration"], pa)]
    else:
        simultaneous = composition == "simultaneous"
        partners = [n for n in names if compatible(a, ACTIONS[n], simultaneous)]
        b = ACTIONS[partners[int(rng.integers(len(partners)))]]
        if simultaneous:
            pa = a.sample(rng, budget)
            offset = float(rng.uniform(0.0, 0.5))
            pb = b.sample(rng, budget - offset)
            da, db = pa["duration"], pb["duration"]
            if b.flexible and da > db + offset:
                db = max(_min_duration(b), da - offset - float(rng.uniform(0.0, 0.3)))
            if a.flexible and db + offset > da:
                da = min(budget, db + offset + float(rng.uniform(0.0, 0.3)))
            pa["duration"], pb["duration"] = round(da, 3), round(db, 3)
            segments = [Segment(a.name, lead, lead + da, pa), Segment(b.name, lead + offset, lead + offset + db, pb)]
        else:
            gap = float(rng.uniform(-0.2, 0.3))
            pa = a.sample(rng, budget * float(rng.uniform(0.4, 0.6)))
            start_b = lead + pa["duration"] + gap
            pb = b.sample(rng, lead + budget - start_b)
            segments = [Segment(a.name, lead, lead + pa["duration"], pa),
                        Segment(b.name, start_b, start_b + pb["duration"], pb)]
    end = max(s.end for s in segments) + tail
    duration = min(max(end, MIN_SECONDS), MAX_SECONDS)
    return MotionSpec(composition, segments, round(round(duration * FPS) / FPS, 2))


def _min_duration(action: Action) -> float:
    return 4.0 if action.name == "walk_turn" else 1.5


def pose_track(spec: MotionSpec, body: Body, fps: int, before: int, after: int) -> Track:
    """Pose curves at ``fps`` for the clip plus ``before``/``after`` idle frames (counted at 20 fps)."""
    step = fps // FPS
    if step * FPS != fps:
        raise ValueError(f"source frame rate {fps} must be a multiple of {FPS}")
    count = (before + spec.frames + after) * step
    track = Track(np.arange(count) / fps - before / FPS, body)
    for seg in spec.segments:
        ACTIONS[seg.action].render(track, seg)
    return track


def root_trajectory(joints: np.ndarray, lift: np.ndarray, contact_band: float = 0.02) -> np.ndarray:
    """Root positions (N, 3) for joints (N, 22, 3) posed at the origin: the lowest foot joint touches
    y = 0 (plus ``lift`` in the air) and, on the ground, the foot joint in contact does not slide.

    The contact is, among the foot joints within ``contact_band`` metres of the lowest, the one that
    moves least relative to the root (the standing foot, not a foot that starts to swing).
    """
    feet = joints[:, FOOT_JOINTS]
    frames = np.arange(len(joints))
    lowest = np.min(feet[..., 1], axis=1)
    height = -lowest + lift
    moves = np.linalg.norm(feet[1:, :, [0, 2]] - feet[:-1, :, [0, 2]], axis=-1)  # (N-1, 4)
    near = feet[:-1, :, 1] <= lowest[:-1, None] + contact_band
    contact = np.argmin(np.where(near, moves, np.inf), axis=1)
    slide = feet[frames[1:], contact] - feet[frames[:-1], contact]
    grounded = (lift[1:] <= 0.0) & (lift[:-1] <= 0.0)
    steps = np.where(grounded[:, None], -slide[:, [0, 2]], 0.0)
    xz = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    return np.stack([xz[:, 0], height, xz[:, 1]], axis=-1)


def to_amass(track: Track, heading: float, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AMASS ``poses`` (N, 156), ``trans`` (N, 3) in the z-up world, and the canonical y-up joints."""
    rotations = track.rotations.copy()
    rotations[:, 0] = rot_y(heading + track.yaw) @ rot_x(track.pelvis_pitch)
    joints = forward_kinematics(rotations, np.zeros(3), track.body.offsets)
    trans = root_trajectory(joints, track.lift) + np.array([origin[0], 0.0, origin[1]])
    rotations[:, 0] = Y_UP_TO_Z_UP @ rotations[:, 0]
    poses = np.zeros((len(rotations), 156))
    moving = np.nonzero(np.any(rotations != np.eye(3), axis=(0, 2, 3)))[0]  # joints ever off their rest
    body = np.zeros((len(rotations), 22, 3))
    body[:, moving] = matrix_to_axis_angle(rotations[:, moving])
    poses[:, :66] = body.reshape(len(rotations), 66)
    return poses, trans @ Y_UP_TO_Z_UP.T, joints + trans[:, None, :]
