"""The catalogue of part-level actions: what each drives, how it moves, how it is described.

Each action writes joint-rotation curves for its body parts into a ``Track`` (angles in degrees
below; flexion of hips/knees/shoulders and dorsiflexion of ankles are positive). Leg and arm actions
are written for the left side; the right side is their mirror image. Arms are posed by two-bone IK
on wrist targets in the chest frame, expressed in units of the arm's length ``L``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from motion.data.synthetic.curves import (
    bump,
    envelope,
    keyframes,
    mirror_rotation,
    rot_x,
    rot_y,
    rot_z,
    slerp_directions,
    smoothstep,
)
from motion.data.synthetic.ik import solve_arm
from motion.data.synthetic.track import Segment, Track

LEGS = ("left_leg", "right_leg")
ARMS = ("left_arm", "right_arm")
SPINE = (("spine1", 0.4), ("spine2", 0.3), ("spine3", 0.3))  # share of a torso rotation per spine joint
GRAVITY = 9.81


@dataclass(frozen=True)
class Action:
    """One part-level action: its body parts, LGTM-style part label and texts, phrasings and motion."""

    name: str
    group: str  # locomotion | legs | kick | arm | arms | torso | head
    parts: tuple[str, ...]
    verb: str  # the part-level "action" label of LGTM's annotation schema
    part_texts: dict[str, str]  # part -> short part description
    phrases: tuple[str, ...]  # caption verb phrases; {verb} marks a conjugated verb, {reps}/{adv}/{angle} parameters
    sample: Callable[[np.random.Generator, float], dict]  # (rng, max seconds) -> params incl. "duration"
    render: Callable[[Track, Segment], None]
    flexible: bool = False  # duration can stretch to match a simultaneous partner
    mobile: bool = False  # moves the feet (never combined with a simultaneous torso action)
    # the same action phrased by its joint rotations (elbow, knee, hip, shoulder, neck, spine): as many as
    # ``phrases`` (which name the movement or where an end effector goes), so both styles are equally common
    joint_phrases: tuple[str, ...] = ()

    @property
    def all_phrases(self) -> tuple[str, ...]:
        """The end-effector / movement phrasings, then the joint-rotation ones."""
        return self.phrases + self.joint_phrases


# ----------------------------------------------------------------------------------------- legs
def _set_leg(track: Track, seg: Segment, side: str, flex, abd, knee, dorsi) -> None:
    """Write one leg's hip/knee/ankle rotations from angle curves in degrees (left-side convention)."""
    n = len(track.t)
    flex, abd, knee, dorsi = (np.broadcast_to(np.radians(np.asarray(a, float)), (n,)) for a in (flex, abd, knee, dorsi))
    mats = {"hip": rot_z(abd) @ rot_x(-flex), "knee": rot_x(knee), "ankle": rot_x(-dorsi)}
    for joint, m in mats.items():
        track.apply(f"{side}_{joint}", mirror_rotation(m) if side == "right" else m, seg.action)


def _gait(track: Track, seg: Segment, hip_amp: float, knee_amp: float, freq: float, direction: float,
          stance_knee: float = 0.0, scale: np.ndarray | float = 1.0, march: bool = False,
          swing_dorsi: float = 10.0) -> None:
    """Alternating leg swing (left leg phase 0, right leg phase pi); the knee bends and the toes lift
    while a leg swings."""
    env = envelope(track.t, seg.start, seg.end, 0.5) * scale
    phase = direction * 2.0 * np.pi * freq * (track.t - seg.start)
    for side, offset in (("left", 0.0), ("right", np.pi)):
        phi = phase + offset
        swing = np.maximum(0.0, np.cos(phi)) ** 1.5
        flex = hip_amp * (swing if march else np.sin(phi))
        _set_leg(track, seg, side, env * flex, 0.0, env * (stance_knee + knee_amp * swing),
                 env * swing_dorsi * np.maximum(0.0, np.cos(phi)))


def _turn(track: Track, start: float, duration: float, direction: float) -> None:
    """Add a 180-degree yaw turn (direction +1: towards the body's left) over ``duration`` seconds."""
    track.yaw += direction * np.pi * smoothstep((track.t - start) / duration)


def render_walk(track: Track, seg: Segment) -> None:
    """Walk forward: hips swing 22 degrees, knees bend 55 in swing, about one stride per second."""
    p = seg.params
    _gait(track, seg, 22 * p["amplitude"], 55 * p["amplitude"], 0.95 * p["speed"], 1.0)


def render_walk_backward(track: Track, seg: Segment) -> None:
    """Walk backward: the forward gait run backward in time."""
    p = seg.params
    _gait(track, seg, 18 * p["amplitude"], 50 * p["amplitude"], 0.85 * p["speed"], -1.0)


def render_run(track: Track, seg: Segment) -> None:
    """Run: wider, faster strides with a high heel lift."""
    p = seg.params
    # no flight phase: high heel lift and toes pulled up keep the landing foot from touching down early
    _gait(track, seg, 30 * p["amplitude"], 100 * p["amplitude"], 1.4 * p["speed"], 1.0, swing_dorsi=25.0)


def render_walk_turn(track: Track, seg: Segment) -> None:
    """Walk forward, turn 180 degrees with shorter steps, walk back."""
    p = seg.params
    dur = p["turn_duration"]
    t0 = seg.start + p["turn_at"] * (seg.end - seg.start - dur)  # turn_at: where in the walk the turn starts
    slow = 1.0 - 0.6 * envelope(track.t, t0 - 0.3, t0 + dur + 0.3, 0.4)  # shorter steps while turning
    _gait(track, seg, 22 * p["amplitude"], 55 * p["amplitude"], 0.95 * p["speed"], 1.0, scale=slow)
    _turn(track, t0, dur, p["turn_direction"])


def render_turn_around(track: Track, seg: Segment) -> None:
    """Turn 180 degrees in place while marching on the spot."""
    p = seg.params
    _gait(track, seg, 25 * p["amplitude"], 50 * p["amplitude"], 1.0 * p["speed"], 1.0, march=True)
    _turn(track, seg.start + 0.35, seg.end - seg.start - 0.7, p["turn_direction"])


def _repeat(track: Track, start: float, cycle: float, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Phase u in [0, 1) within each of ``reps`` cycles from ``start``, and the mask of frames inside them."""
    x = (track.t - start) / cycle
    return x - np.floor(x), (x >= 0) & (x < reps)


def _side_step(lead: str) -> Callable[[Track, Segment], None]:
    trail = "right" if lead == "left" else "left"

    def render(track: Track, seg: Segment) -> None:
        p = seg.params
        u, inside = _repeat(track, seg.start + 0.15, 1.1 / p["speed"], p["reps"])
        amp = 14.0 * p["amplitude"] * inside
        lift_lead, lift_trail = bump(u, 0.0, 0.3) * inside, bump(u, 0.6, 0.9) * inside
        _set_leg(track, seg, lead, 18 * lift_lead, amp * keyframes(u, [0, .3, .6, 1], [0, 1, 0, 0]), 36 * lift_lead, 0)
        _set_leg(track, seg, trail, 18 * lift_trail, amp * keyframes(u, [0, .3, .6, .9, 1], [0, 0, 1, 0, 0]),
                 36 * lift_trail, 0)
    return render


def render_jump(track: Track, seg: Segment) -> None:
    """Jump in place: crouch, take off with pointed toes, fly a ballistic arc, land and absorb."""
    p = seg.params
    a, flight = p["amplitude"], p["flight"]
    times = [0.0, 0.35, 0.5, 0.5 + flight, 0.7 + flight, 1.05 + flight]
    u, inside = _repeat(track, seg.start + 0.1, times[-1], p["reps"])
    s = (u * times[-1])  # seconds into the current jump
    crouch = lambda values: keyframes(s, times, values) * inside  # noqa: E731
    flex, knee, dorsi = crouch([0, 40 * a, 0, 5, 35 * a, 0]), crouch([0, 75 * a, 0, 10, 65 * a, 0]), \
        crouch([0, 35 * a, -30, -15, 30 * a, 0])
    for side in ("left", "right"):
        _set_leg(track, seg, side, flex, 0.0, knee, dorsi)
    airborne = inside & (s > 0.5) & (s < 0.5 + flight)
    track.lift += np.where(airborne, 0.5 * GRAVITY * (s - 0.5) * (0.5 + flight - s), 0.0)


def render_squat(track: Track, seg: Segment) -> None:
    """Squat down and up with flat feet; the pelvis tips the trunk forward for balance."""
    p = seg.params
    u, inside = _repeat(track, seg.start + 0.1, 2.2 / p["speed"], p["reps"])
    deepest = 0.7 + 0.3 * np.clip((p["amplitude"] - 0.75) / 0.4, 0, 1)  # thighs horizontal at 1
    depth = deepest * keyframes(u, [0, .4, .6, 1], [0, 1, 1, 0]) * inside
    track.pelvis_pitch += np.radians(30 * depth)  # the trunk leans forward to keep balance
    for side in ("left", "right"):
        # hip 110, knee 115, ankle 35: thigh 80 deg forward of vertical, shin 35 deg, foot flat
        _set_leg(track, seg, side, 110 * depth, 0.0, 115 * depth, 35 * depth)


def _kick(side: str) -> Callable[[Track, Segment], None]:
    def render(track: Track, seg: Segment) -> None:
        p = seg.params
        u, inside = _repeat(track, seg.start + 0.1, 1.1 / p["speed"], p["reps"])
        height = 55 + 30 * np.clip((p["amplitude"] - 0.75) / 0.4, 0, 1)
        flex = keyframes(u, [0, .3, .45, .65, 1], [0, 50, height, 40, 0]) * inside
        knee = keyframes(u, [0, .3, .45, .65, 1], [0, 85, 8, 60, 0]) * inside
        dorsi = keyframes(u, [0, .3, .45, .65, 1], [0, 0, -25, 0, 0]) * inside
        _set_leg(track, seg, side, flex, 0.0, knee, dorsi)
    return render


# ----------------------------------------------------------------------------------------- arms
_REST_DIR = np.array([0.0, -1.0, 0.0])
_REST_POLE = np.array([0.0, 0.0, -1.0])  # a hanging arm's elbow points backward
_VIA = np.array([0.35, -0.25, 1.0]) / np.linalg.norm([0.35, -0.25, 1.0])  # big raises pass in front


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _arm_frame(track: Track, side: str) -> tuple[np.ndarray, float]:
    """Shoulder position (left-arm space, chest frame) and full arm length of ``side``."""
    shoulder = track.body.chest_relative(f"{side}_shoulder") * np.array([1.0 if side == "left" else -1.0, 1, 1])
    return shoulder, float(sum(track.body.arm_lengths(side)))


def _set_arm(track: Track, seg: Segment, side: str, targets: np.ndarray, pole, ramp: float = 0.45) -> None:
    """Reach the wrist ``targets`` (N, 3; left-arm space) from and back to the hanging rest pose."""
    shoulder, length = _arm_frame(track, side)
    w = envelope(track.t, seg.start, seg.end, ramp)
    rel = np.broadcast_to(targets, (len(track.t), 3)) - shoulder
    radius = np.linalg.norm(rel, axis=-1)
    direction = rel / radius[:, None]
    far = (direction @ _REST_DIR) < np.cos(np.radians(100))  # go through the front for big raises
    direct = slerp_directions(_REST_DIR, direction, w)
    via = slerp_directions(slerp_directions(_REST_DIR, _VIA, np.clip(2 * w, 0, 1)), direction, np.clip(2 * w - 1, 0, 1))
    direction = np.where(far[:, None], via, direct)
    reach = (1 - w) * length * 0.9999 + w * radius
    poles = slerp_directions(_REST_POLE, _unit(np.broadcast_to(np.asarray(pole, float), (len(w), 3))), w)
    rot_s, rot_e = solve_arm(track.body, side, shoulder + direction * reach[:, None], poles)
    resting = (w <= 0.0)[:, None, None]
    track.apply(f"{side}_shoulder", np.where(resting, np.eye(3), rot_s), seg.action)
    track.apply(f"{side}_elbow", np.where(resting, np.eye(3), rot_e), seg.action)


def _arm_action(pose: Callable[[Track, Segment, np.ndarray, float], tuple[np.ndarray, np.ndarray]],
                sides: tuple[str, ...]) -> Callable[[Track, Segment], None]:
    """Render an arm action given ``pose(track, seg, shoulder, length) -> (targets, pole)`` per side."""
    def render(track: Track, seg: Segment) -> None:
        for side in sides:
            shoulder, length = _arm_frame(track, side)
            targets, pole = pose(track, seg, shoulder, length)
            _set_arm(track, seg, side, targets, pole)
    return render


def _tau(track: Track, seg: Segment) -> np.ndarray:
    return track.t - seg.start


def pose_wave(track: Track, seg: Segment, s: np.ndarray, L: float) -> tuple[np.ndarray, tuple]:
    """Wave: elbow out at shoulder height, forearm up, swaying side to side."""
    p = seg.params
    sway = 0.16 * p["amplitude"] * np.sin(2 * np.pi * 2.0 * p["speed"] * _tau(track, seg))
    return s + L * np.stack([0.45 + sway, np.full_like(sway, 0.48), np.full_like(sway, 0.12)], -1), (1, -0.3, -0.2)


def pose_raise(track: Track, seg: Segment, s: np.ndarray, L: float) -> tuple[np.ndarray, tuple]:
    """Raise the arm straight up above the head."""
    return s + 0.97 * L * _unit(np.array([0.15, 0.98, 0.1])), (0.5, 0.0, -1.0)


def pose_punch(track: Track, seg: Segment, s: np.ndarray, L: float) -> tuple[np.ndarray, tuple]:
    """Punch: from a chambered fist by the chest to a straight arm forward, ``reps`` times."""
    p = seg.params
    u, inside = _repeat(track, seg.start + 0.45, 0.6 / p["speed"], p["reps"])
    k = keyframes(u, [0, .3, .5, 1], [0, 1, 1, 0]) * inside
    chamber, strike = s + L * np.array([-0.12, -0.3, 0.38]), s + 0.97 * L * _unit(np.array([-0.15, 0.05, 1.0]))
    return chamber + k[:, None] * (strike - chamber), (1, -1, -0.5)


def pose_reach(track: Track, seg: Segment, s: np.ndarray, L: float) -> tuple[np.ndarray, tuple]:
    """Reach forward at shoulder height."""
    return s + 0.96 * L * _unit(np.array([-0.05, -0.02, 1.0])), (1, -1, -0.5)


def pose_touch_head(track: Track, seg: Segment, s: np.ndarray, L: float) -> tuple[np.ndarray, tuple]:
    """Hand on the side of the head."""
    return track.body.chest_relative("head") + track.body.scale * np.array([0.085, 0.04, -0.03]), (1, 0.3, -0.4)


def pose_touch_shoulder(track: Track, seg: Segment, s: np.ndarray, L: float) -> tuple[np.ndarray, tuple]:
    """Hand across the chest on the opposite shoulder."""
    return s * np.array([-1.0, 1.0, 1.0]) + track.body.scale * np.array([0.0, 0.04, 0.08]), (0.3, -1, 0.4)


def pose_circle(track: Track, seg: Segment, s: np.ndarray, L: float) -> tuple[np.ndarray, tuple]:
    """Arm out to the side drawing forward circles."""
    p = seg.params
    angle = 2 * np.pi * 1.0 * p["speed"] * _tau(track, seg)
    r = 0.2 + 0.1 * np.clip((p["amplitude"] - 0.75) / 0.4, 0, 1)
    return s + L * np.stack([np.full_like(angle, 0.88), r * np.cos(angle), r * np.sin(angle)], -1), (0, -0.5, -1)


def pose_clap(track: Track, seg: Segment, s: np.ndarray, L: float) -> tuple[np.ndarray, tuple]:
    """Hands open and meet in front of the chest."""
    p = seg.params
    gap = 0.03 + 0.10 * p["amplitude"] * (0.5 + 0.5 * np.cos(2 * np.pi * 2.0 * p["speed"] * (_tau(track, seg) - 0.45)))
    ones = np.ones_like(gap)
    return track.body.scale * np.stack([gap, -0.02 * ones, 0.33 * ones], -1), (1, -1, -0.3)


# ---------------------------------------------------------------------------------- torso & head
def _torso(axis: Callable, sign: float) -> Callable[[Track, Segment], None]:
    def render(track: Track, seg: Segment) -> None:
        w = envelope(track.t, seg.start, seg.end, min(0.8, 0.3 * (seg.end - seg.start)))
        angle = np.radians(seg.params["angle"]) * sign * w
        for joint, share in SPINE:
            track.apply(joint, axis(share * angle), seg.action)
    return render


def render_bend_forward(track: Track, seg: Segment) -> None:
    """Bend half at the hips (pelvis pitch, legs kept vertical) and half along the spine: the upper
    trunk ends ``angle`` degrees from vertical."""
    w = envelope(track.t, seg.start, seg.end, min(0.8, 0.3 * (seg.end - seg.start)))
    angle = np.radians(seg.params["angle"]) * w
    track.pelvis_pitch += 0.5 * angle
    for side in ("left", "right"):
        track.apply(f"{side}_hip", rot_x(-0.5 * angle), seg.action)
    for joint, share in SPINE:
        track.apply(joint, rot_x(0.5 * share * angle), seg.action)


def render_nod(track: Track, seg: Segment) -> None:
    """Nod: the neck pitches down and back up ``reps`` times."""
    p = seg.params
    tau = _tau(track, seg) - 0.15
    cycles = np.clip(tau * 1.5 * p["speed"], 0, p["reps"])
    angle = p["angle"] * (0.5 - 0.5 * np.cos(2 * np.pi * cycles))
    track.apply("neck", rot_x(np.radians(angle) * envelope(track.t, seg.start, seg.end, 0.15)), seg.action)


def render_shake(track: Track, seg: Segment) -> None:
    """Shake the head: the neck yaws left and right ``reps`` times."""
    p = seg.params
    tau = _tau(track, seg) - 0.15
    cycles = np.clip(tau * 1.7 * p["speed"], 0, p["reps"])
    angle = p["angle"] * np.sin(2 * np.pi * cycles)
    track.apply("neck", rot_y(np.radians(angle) * envelope(track.t, seg.start, seg.end, 0.25)), seg.action)


def _look(axis: Callable, sign: float) -> Callable[[Track, Segment], None]:
    def render(track: Track, seg: Segment) -> None:
        w = envelope(track.t, seg.start, seg.end, 0.4)
        track.apply("neck", axis(np.radians(seg.params["angle"]) * sign * w), seg.action)
    return render


# ------------------------------------------------------------------------------------ sampling
def _base(rng: np.random.Generator) -> dict:
    return {"speed": round(float(rng.uniform(0.8, 1.25)), 3), "amplitude": round(float(rng.uniform(0.75, 1.15)), 3)}


def _flexible(low: float, high: float, **extra) -> Callable[[np.random.Generator, float], dict]:
    """Sampler of a free-length action lasting between ``low`` and ``high`` seconds (capped by the budget)."""
    def sample(rng: np.random.Generator, budget: float) -> dict:
        params = _base(rng)
        for key, values in extra.items():
            params[key] = values[int(rng.integers(len(values)))]
        params["duration"] = round(float(min(budget, rng.uniform(low, high))), 3)
        return params
    return sample


def _repeated(cycle: Callable[[dict], float], lead: float, reps: tuple[int, int], **extra
              ) -> Callable[[np.random.Generator, float], dict]:
    """Sampler of an action repeated ``reps`` times (as many as fit the budget)."""
    def sample(rng: np.random.Generator, budget: float) -> dict:
        params = _base(rng)
        for key, values in extra.items():
            params[key] = values[int(rng.integers(len(values)))]
        n = int(rng.integers(reps[0], reps[1] + 1))
        while n > 1 and lead + n * cycle(params) > budget:
            n -= 1
        params["reps"] = n
        params["duration"] = round(lead + n * cycle(params), 3)
        return params
    return sample


def _sample_jump(rng: np.random.Generator, budget: float) -> dict:
    inner = _repeated(lambda p: 1.05 + p["flight"], 0.2, (1, 3), flight=[0.3, 0.34, 0.38, 0.42])
    return inner(rng, budget)


def _sample_walk_turn(rng: np.random.Generator, budget: float) -> dict:
    params = _base(rng)
    duration = float(min(budget, rng.uniform(4.5, 8.5)))
    params.update(duration=round(duration, 3), turn_duration=round(float(rng.uniform(1.2, 1.8)), 3),
                  turn_direction=int(rng.choice([-1, 1])))
    params["turn_at"] = round(float(rng.uniform(0.35, 0.55)), 3)
    return params


def _sample_turn_around(rng: np.random.Generator, budget: float) -> dict:
    params = _base(rng)
    params.update(duration=round(float(min(budget, rng.uniform(2.4, 3.4))), 3), turn_direction=int(rng.choice([-1, 1])))
    return params


# ----------------------------------------------------------------------------------- catalogue
def _arm_texts(side: str, text: str) -> dict[str, str]:
    return {f"{side}_arm": text.format(side=side, other="right" if side == "left" else "left")}


def _build() -> dict[str, Action]:
    actions: list[Action] = []
    both_legs = lambda text: {p: text for p in LEGS}  # noqa: E731
    actions += [
        Action("walk_forward", "locomotion", LEGS, "walk", both_legs("walks forward"),
               ("{walk} forward {adv}", "{walk} straight ahead {adv}", "{take} a few steps forward",
                "{walk} forward in a straight line"), _flexible(2.5, 7.0), render_walk, flexible=True, mobile=True),
        Action("walk_backward", "locomotion", LEGS, "walk", both_legs("walks backward"),
               ("{walk} backward {adv}", "{walk} backwards", "{step} back a few times", "{move} backward step by step"),
               _flexible(2.5, 6.5), render_walk_backward, flexible=True, mobile=True),
        Action("run", "locomotion", LEGS, "run", both_legs("runs forward"),
               ("{run} forward {adv}", "{jog} forward", "{run} straight ahead", "{run} in a straight line"),
               _flexible(2.2, 6.0), render_run, flexible=True, mobile=True),
        Action("side_step_left", "locomotion", LEGS, "step", both_legs("steps to the left"),
               ("{step} sideways to the left", "{take} {reps_n} steps to the left", "{shuffle} to the left",
                "{move} sideways to the left {adv}"), _repeated(lambda p: 1.1 / p["speed"], 0.3, (2, 5)),
               _side_step("left"), mobile=True),
        Action("side_step_right", "locomotion", LEGS, "step", both_legs("steps to the right"),
               ("{step} sideways to the right", "{take} {reps_n} steps to the right", "{shuffle} to the right",
                "{move} sideways to the right {adv}"), _repeated(lambda p: 1.1 / p["speed"], 0.3, (2, 5)),
               _side_step("right"), mobile=True),
        Action("jump", "legs", LEGS, "jump", both_legs("jumps up"),
               ("{jump} {reps}", "{jump} up and down {reps}", "{jump} in place {reps}", "{hop} up {reps}"),
               _sample_jump, render_jump, mobile=True),
        Action("squat", "legs", LEGS + ("torso",), "squat", {**both_legs("squats down"), "torso": "squats down"},
               ("{squat} down {reps}", "{squat} {reps}", "{crouch} down {reps}", "{bend} the knees and {squat} down"),
               _repeated(lambda p: 2.2 / p["speed"], 0.2, (1, 3)), render_squat),
        Action("walk_turn", "locomotion", LEGS + ("torso",), "walk",
               {**both_legs("walks forward, turns around and walks back"), "torso": "turns around"},
               ("{walk} forward, {turn} around and {walk} back", "{walk} forward then {turn} around and {come} back",
                "{walk} ahead, {turn} around and {return}"), _sample_walk_turn, render_walk_turn,
               flexible=True, mobile=True),
        Action("turn_around", "locomotion", LEGS + ("torso",), "turn",
               {**both_legs("steps around in place"), "torso": "turns around"},
               ("{turn} around", "{turn} around in place", "{turn} around to {face:base} the other way",
                "{turn} to {face:base} the opposite direction"), _sample_turn_around, render_turn_around, mobile=True),
    ]
    for side in ("left", "right"):
        actions.append(Action(
            f"kick_{side}", "kick", (f"{side}_leg",), "kick", {f"{side}_leg": "kicks forward"},
            (f"{{kick}} with the {side} leg {{reps}}", f"{{kick}} {{reps}} with the {side} foot",
             f"{{kick}} the {side} leg forward", f"{{kick}} forward with the {side} leg"),
            _repeated(lambda p: 1.1 / p["speed"], 0.2, (1, 2)), _kick(side), mobile=True))
    arm_specs = [  # name, verb, part text, phrases, sampler, pose, flexible
        ("wave", "wave", "waves the {side} hand",
         ("{wave} the {side} hand {adv}", "{wave} with the {side} hand", "{raise} the {side} hand and {wave}",
          "{wave} hello with the {side} hand"), _flexible(1.6, 4.0), pose_wave, True),
        ("raise", "raise", "raises the {side} arm",
         ("{raise} the {side} arm", "{lift} the {side} arm above the head", "{raise} the {side} hand up high",
          "{put} the {side} arm up"), _flexible(1.6, 3.5), pose_raise, True),
        ("punch", "punch", "punches forward",
         ("{punch} forward with the {side} hand {reps}", "{punch} {reps} with the {side} arm",
          "{jab} with the {side} fist {reps}", "{jab} forward with the {side} fist"),
         _repeated(lambda p: 0.6 / p["speed"], 0.9, (1, 4)), pose_punch, False),
        ("reach", "reach", "reaches forward",
         ("{reach} forward with the {side} hand", "{extend} the {side} arm forward",
          "{reach} out in front with the {side} arm", "{stretch} the {side} arm out forward"),
         _flexible(1.6, 3.2), pose_reach, True),
        ("touch_head", "touch", "touches the head",
         ("{touch} the head with the {side} hand", "{put} the {side} hand on the head",
          "{place} the {side} hand on the head", "{touch} the {side} side of the head"), _flexible(1.6, 3.2),
         pose_touch_head, True),
        ("touch_shoulder", "touch", "touches the {other} shoulder",
         ("{touch} the {other} shoulder with the {side} hand", "{put} the {side} hand on the {other} shoulder",
          "{reach} across the chest to {touch:base} the {other} shoulder with the {side} hand",
          "{place} the {side} hand on the opposite shoulder"), _flexible(1.6, 3.2), pose_touch_shoulder, True),
        ("circle", "circle", "circles the {side} arm",
         ("{circle} the {side} arm {reps}", "{make} circles with the {side} arm",
          "{swing} the {side} arm in circles", "{rotate} the {side} arm in big circles"),
         _repeated(lambda p: 1.0 / p["speed"], 0.9, (2, 4)), pose_circle, False),
    ]
    for side in ("left", "right"):
        other = "right" if side == "left" else "left"
        for name, verb, text, phrases, sampler, pose, flexible in arm_specs:
            actions.append(Action(
                f"{name}_{side}", "arm", (f"{side}_arm",), verb, _arm_texts(side, text),
                tuple(ph.replace("{side}", side).replace("{other}", other) for ph in phrases),
                sampler, _arm_action(pose, (side,)), flexible=flexible))
    both = lambda text: {p: text for p in ARMS}  # noqa: E731
    actions += [
        Action("clap", "arms", ARMS, "clap", both("claps hands"),
               ("{clap} {reps}", "{clap} the hands {reps}", "{clap} hands together {adv}",
                "{clap} in front of the chest"), _repeated(lambda p: 0.5 / p["speed"], 0.9, (2, 5)),
               _arm_action(pose_clap, ("left", "right"))),
        Action("raise_both", "arms", ARMS, "raise", both("raises both arms"),
               ("{raise} both arms", "{lift} both hands above the head", "{put} both arms up",
                "{raise} both hands high"),
               _flexible(1.6, 3.5), _arm_action(pose_raise, ("left", "right")), flexible=True),
        Action("wave_both", "arms", ARMS, "wave", both("waves both hands"),
               ("{wave} both hands", "{wave} with both hands {adv}", "{wave} both arms in the air"),
               _flexible(1.6, 4.0), _arm_action(pose_wave, ("left", "right")), flexible=True),
        Action("circle_both", "arms", ARMS, "circle", both("circles both arms"),
               ("{make} circles with both arms", "{circle} both arms {reps}", "{swing} both arms in circles",
                "{rotate} both arms in circles"), _repeated(lambda p: 1.0 / p["speed"], 0.9, (2, 4)),
               _arm_action(pose_circle, ("left", "right"))),
    ]
    torso = ("torso",)
    actions += [
        Action("bend_forward", "torso", torso, "bend", {"torso": "bends forward"},
               ("{bend} forward {angle}", "{bend} over {angle}", "{lean} forward at the waist",
                "{bend} the upper body forward {angle}"), _flexible(2.0, 4.0, angle=[30, 45, 60, 75, 90]),
               render_bend_forward, flexible=True),
        Action("lean_left", "torso", torso, "lean", {"torso": "leans to the left"},
               ("{lean} to the left", "{tilt} the upper body to the left", "{bend} sideways to the left",
                "{lean} the torso to the left"), _flexible(1.8, 3.5, angle=[15, 20, 25, 30]), _torso(rot_z, -1.0),
               flexible=True),
        Action("lean_right", "torso", torso, "lean", {"torso": "leans to the right"},
               ("{lean} to the right", "{tilt} the upper body to the right", "{bend} sideways to the right",
                "{lean} the torso to the right"), _flexible(1.8, 3.5, angle=[15, 20, 25, 30]), _torso(rot_z, 1.0),
               flexible=True),
        Action("twist_left", "torso", torso, "twist", {"torso": "twists to the left"},
               ("{twist} the torso to the left", "{turn} the upper body to the left", "{rotate} the chest to the left",
                "{twist} to the left at the waist"), _flexible(1.8, 3.5, angle=[30, 40, 50, 60]), _torso(rot_y, 1.0),
               flexible=True),
        Action("twist_right", "torso", torso, "twist", {"torso": "twists to the right"},
               ("{twist} the torso to the right", "{turn} the upper body to the right",
                "{rotate} the chest to the right", "{twist} to the right at the waist"),
               _flexible(1.8, 3.5, angle=[30, 40, 50, 60]), _torso(rot_y, -1.0), flexible=True),
    ]
    head = ("head",)
    actions += [
        Action("nod", "head", head, "nod", {"head": "nods"},
               ("{nod} {reps}", "{nod} the head {reps}", "{nod} yes", "{move} the head up and down"),
               _repeated(lambda p: 1.0 / (1.5 * p["speed"]), 0.3, (2, 4), angle=[15, 20, 25, 30]), render_nod),
        Action("shake", "head", head, "shake", {"head": "shakes the head"},
               ("{shake} the head", "{shake} the head no", "{shake} the head from side to side",
                "{turn} the head left and right"),
               _repeated(lambda p: 1.0 / (1.7 * p["speed"]), 0.4, (2, 4), angle=[25, 30, 35, 40]), render_shake),
        Action("look_left", "head", head, "look", {"head": "looks to the left"},
               ("{look} to the left", "{turn} the head to the left", "{glance} to the left", "{look} over to the left"),
               _flexible(1.5, 3.0, angle=[45, 55, 65]), _look(rot_y, 1.0), flexible=True),
        Action("look_right", "head", head, "look", {"head": "looks to the right"},
               ("{look} to the right", "{turn} the head to the right", "{glance} to the right",
                "{look} over to the right"), _flexible(1.5, 3.0, angle=[45, 55, 65]), _look(rot_y, -1.0),
               flexible=True),
        Action("look_up", "head", head, "look", {"head": "looks up"},
               ("{look} up", "{tilt} the head back and {look} up", "{raise} the head to {look:base} up",
                "{look} up at the sky"), _flexible(1.5, 3.0, angle=[25, 32, 40]), _look(rot_x, -1.0), flexible=True),
        Action("look_down", "head", head, "look", {"head": "looks down"},
               ("{look} down", "{lower} the head", "{look} down at the floor", "{bow} the head"),
               _flexible(1.5, 3.0, angle=[25, 32, 40]), _look(rot_x, 1.0), flexible=True),
    ]
    return {a.name: replace(a, joint_phrases=_joint_phrases(a.name)) for a in actions}


# Joint-rotation phrasings per action ({side} / {other}: the action's side and the opposite one).
JOINT_PHRASES: dict[str, tuple[str, ...]] = {
    "walk_forward": ("{walk} forward, {bend:ger} the knees in turn", "{swing} the legs forward at the hips {adv}",
                     "{move} forward by {bend:ger} the hips and knees", "{step} forward with the knees slightly bent"),
    "walk_backward": ("{swing} the thighs backward from the hips", "{walk} backward, {bend:ger} the knees in turn",
                      "{move} backward by {bend:ger} the hips and knees", "{step} back with the knees slightly bent"),
    "run": ("{run} forward with the knees bent high", "{swing} the thighs forward quickly from the hips",
            "{run} forward, {bend:ger} the elbows and knees", "{jog} with the knees and elbows bent"),
    "side_step_{side}": ("{open} the hips to {step:base} to the {side}", "{move} the {side} leg out at the hip and "
                         "{step} to the {side}", "{step} to the {side}, {bend:ger} the knees slightly",
                         "{lift} the {side} thigh out to the side and {step} to the {side}"),
    "jump": ("{bend} the knees and {straighten} them to {jump:base} {reps}", "{bend} the hips and knees and {jump} {reps}",
             "{jump} {reps}, {bend:ger} the knees to {land:base}", "{extend} the knees and ankles to {jump:base} up {reps}"),
    "squat": ("{bend} the knees and hips {reps}", "{bend} the knees to 90 degrees {reps}",
              "{flex} the hips and knees to {squat:base} {reps}", "{lower} the hips by {bend:ger} the knees {reps}"),
    "walk_turn": ("{walk} forward, {rotate} the hips around and {walk} back",
                  "{swing} the legs forward, {turn} the pelvis around and {come} back",
                  "{walk} ahead, {rotate} the torso and hips around and {return}"),
    "turn_around": ("{rotate} the hips around", "{turn} the pelvis around in place",
                    "{rotate} the body around at the hips", "{turn} around by {rotate:ger} the hips"),
    "kick_{side}": ("{swing} the {side} leg forward from the hip {reps}", "{straighten} the {side} knee to {kick:base} "
                    "forward", "{bend} the {side} hip and {straighten} the knee {reps}",
                    "{flex} the {side} hip and {extend} the {side} knee quickly"),
    "wave_{side}": ("{bend} the {side} elbow and {swing} the forearm from side to side",
                    "{raise} the {side} upper arm and {rotate} the forearm at the elbow",
                    "{swing} the {side} forearm from the elbow {adv}",
                    "{lift} the {side} elbow to shoulder height and {wave}"),
    "raise_{side}": ("{rotate} the {side} shoulder to {lift:base} the arm up",
                     "{lift} the {side} arm up at the shoulder with the elbow straight",
                     "{raise} the {side} upper arm with a straight elbow", "{flex} the {side} shoulder fully"),
    "punch_{side}": ("{extend} the {side} elbow quickly {reps}", "{straighten} the {side} arm at the elbow {reps}",
                     "{bend} and {straighten} the {side} elbow {reps}", "{push} the {side} fist out by {extend:ger} "
                     "the elbow"),
    "reach_{side}": ("{raise} the {side} arm forward at the shoulder with the elbow straight",
                     "{straighten} the {side} elbow out in front", "{flex} the {side} shoulder forward to 90 degrees",
                     "{lift} the {side} upper arm forward and {extend} the elbow"),
    "touch_head_{side}": ("{bend} the {side} elbow fully with the upper arm raised to the side",
                          "{lift} the {side} elbow high and {fold} the forearm in",
                          "{rotate} the {side} shoulder up and {bend} the elbow sharply",
                          "{raise} the {side} arm out to the side and {bend} the elbow"),
    "touch_shoulder_{side}": ("{bend} the {side} elbow fully and {swing} the arm across the chest",
                              "{swing} the {side} arm across the body with the elbow bent",
                              "{rotate} the {side} shoulder inward and {bend} the elbow",
                              "{fold} the {side} arm across the chest at the elbow"),
    "circle_{side}": ("{rotate} the {side} arm at the shoulder {reps}", "{swing} the {side} arm around at the shoulder",
                      "{turn} the {side} shoulder in big circles", "{rotate} the {side} shoulder with the elbow straight"),
    "clap": ("{bend} both elbows and {clap} {reps}", "{swing} both forearms together at the elbows {reps}",
             "{rotate} both shoulders inward to {clap:base} {reps}", "{bend} the elbows and {clap} in front of the chest"),
    "raise_both": ("{lift} both arms up at the shoulders", "{rotate} both shoulders to {raise:base} the arms up",
                   "{raise} both upper arms with straight elbows", "{flex} both shoulders fully"),
    "wave_both": ("{bend} both elbows and {swing} the forearms", "{swing} both forearms from the elbows",
                  "{raise} both upper arms and {rotate} the forearms at the elbows"),
    "circle_both": ("{rotate} both arms at the shoulders", "{rotate} both shoulders {reps}",
                    "{swing} both arms around at the shoulders", "{turn} both shoulders in circles"),
    "bend_forward": ("{flex} the hips {angle}", "{bend} at the hips {angle}", "{tilt} the pelvis forward {angle}",
                     "{rotate} the torso forward at the hips {angle}"),
    "lean_{side}": ("{bend} the spine to the {side}", "{tilt} the pelvis and spine to the {side}",
                    "{flex} the spine sideways to the {side}", "{bend} sideways at the hips to the {side}"),
    "twist_{side}": ("{rotate} the spine to the {side}", "{turn} the shoulders to the {side} over the hips",
                     "{rotate} the upper body to the {side} at the hips", "{twist} the spine to the {side}"),
    "nod": ("{bend} the neck forward {reps}", "{flex} the neck {reps}", "{tilt} the head forward at the neck {reps}",
            "{bend} the neck up and down"),
    "shake": ("{rotate} the neck from side to side", "{turn} the neck left and right", "{twist} the neck left and right",
              "{rotate} the head at the neck from side to side"),
    "look_{side}": ("{rotate} the neck to the {side}", "{turn} the neck to the {side}", "{twist} the neck to the {side}",
                    "{rotate} the head to the {side} at the neck"),
    "look_up": ("{bend} the neck back", "{tilt} the neck back", "{extend} the neck up",
                "{rotate} the head back at the neck"),
    "look_down": ("{bend} the neck forward", "{flex} the neck down", "{tilt} the neck forward",
                  "{lower} the head at the neck"),
}


def _joint_phrases(name: str) -> tuple[str, ...]:
    """The joint-rotation phrasings of action ``name`` (its side filled in)."""
    if name in JOINT_PHRASES:
        return JOINT_PHRASES[name]
    base, side = name.rsplit("_", 1)
    other = "right" if side == "left" else "left"
    return tuple(p.replace("{side}", side).replace("{other}", other) for p in JOINT_PHRASES[f"{base}_{{side}}"])


ACTIONS: dict[str, Action] = _build()
