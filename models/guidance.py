"""Explicit IK for LGTM: spatial constraints on joints, enforced by guidance during sampling, and part inpainting.

Constraint syntax (one constraint per string; several may be joined with ``;``):

    near <jointA> <jointB> <radius_m> [frames <a>-<b|end>]   distance between the two joints <= radius
    above <joint> <height_m> [frames ...]                     joint height above the floor >= height
    below <joint> <height_m> [frames ...]                     joint height above the floor <= height
    planted <joint> [frames ...]                              on the floor and not moving horizontally
    pitch <degrees> [frames ...]                              torso pitch (pelvis->neck from vertical, forward +)

Joint names are ``motion.core.skeleton.JOINT_NAMES``; frames are 20 fps indices, both ends included, ``end`` is
the motion's last frame (``frames 40`` and ``frames end`` name one frame); without ``frames`` all frames count.

Conventions: joints (T, 22, 3) in HumanML3D's frame (y up, metres). The floor of a motion is the lowest height of
its foot joints (ankles and toes) over its frames, as HumanML3D puts a clip on the floor (heights are relative to
it, so they do not change when the whole body moves up or down). ``planted`` allows PLANTED_HEIGHT above the floor
(ankles sit higher than toes) and PLANTED_DRIFT of horizontal distance from the joint's mean position over the
frames; ``pitch`` is the angle from vertical of the pelvis->neck vector in the body's sagittal plane (facing
direction and up; the facing direction is HumanML3D's, from hips and shoulders), within PITCH_TOLERANCE of the
target. It equals ``motion.study.constraints.torso_pitch`` when the torso does not lean sideways.

Each constraint has a per-frame violation, a hinge that is 0 when satisfied (metres; radians for ``pitch``), and
its loss is the mean violation over its frames. Guidance (``MotionGuidance``, the ``guidance=`` hook of
``models.diffusion.sample``) corrects the predicted clean motion x0 at every denoising step: joints are recovered
from x0 differentiably (``models.kinematics``), the summed loss L of each sample is differentiated w.r.t. x0 and x0
<- x0 - strength * L * g / |g|^2, the minimum-norm step that removes the fraction ``strength`` of the violation of
the linearised loss (the per-sample normalisation: the step does not depend on the loss' scale), repeated
``iterations`` times per denoising step (the joints are far from linear in the features: root velocities and
rotation are integrated). Moving joint positions directly stretches bones (each joint's position is a feature of
its own), so with ``keep_bones`` (the default) every guidance step is followed by the minimum-norm step that brings
the bone lengths back within BONE_TOLERANCE of those of x0 before guidance (alternating projections: a trade of
some residual violation for less stretch). The scheduler then steps with the corrected x0. Part inpainting replaces
the kept parts of x0 by a reference motion's features at every step, so only the other parts are regenerated (the
last DDIM / DPM- Solver++ step returns x0 itself, so the kept parts of the result equal the reference).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.kinematics import features_to_packed, packed_to_joints
from motion.core.errors import DataError
from motion.core.parts import PART_DIMS, PART_NAMES
from motion.core.skeleton import FACE_JOINTS, FOOT_JOINTS, JOINT_INDEX, JOINT_NAMES, PARENTS

PLANTED_HEIGHT = 0.05   # m above the floor a planted joint may be (toes and every joint but the ankles)
PLANTED_ANKLE_HEIGHT = 0.10  # m: a standing ankle sits 3-9 cm above the floor in HumanML3D
PLANTED_DRIFT = 0.02    # m of horizontal distance from the joint's mean position over the constrained frames
PITCH_TOLERANCE = 5.0   # degrees around the target pitch
BONE_TOLERANCE = 0.01   # m a bone may stretch or shrink under guidance (keep_bones)
DEFAULT_STRENGTH = 1.0  # fraction of the (linearised) violation removed by each guidance step
DEFAULT_ITERATIONS = 5  # guidance steps per denoising step (joints are far from linear in the features)
EPS = 1e-12

SYNTAX = ("near <jointA> <jointB> <radius_m> | above <joint> <height_m> | below <joint> <height_m> | "
          "planted <joint> | pitch <degrees>, each optionally followed by 'frames <a>-<b|end>'; several joined "
          "with ';'")


class ConstraintError(ValueError):
    """A constraint text that does not follow the syntax (one line naming the bad token)."""


# ----------------------------------------------------------------------------- the constraints

@dataclass(frozen=True)
class Frames:
    """Constrained frames: ``first`` to ``last`` included; None stands for the motion's last frame ('end')."""

    first: int | None = 0
    last: int | None = None

    def resolve(self, length: int) -> tuple[int, int]:
        """Half-open [start, stop) frame range in a motion of ``length`` frames (``last`` clipped to it)."""
        first = length - 1 if self.first is None else self.first
        if first >= length:
            raise ValueError(f"constraint frames {self.text()} start after the motion's last frame {length - 1}")
        return first, length if self.last is None else min(self.last, length - 1) + 1

    def text(self) -> str:
        """The syntax of this range ('' for all frames)."""
        if self.first == 0 and self.last is None:
            return ""
        if self.first is None:
            return "end"
        if self.first == self.last:
            return str(self.first)
        return f"{self.first}-{'end' if self.last is None else self.last}"


def _suffix(frames: Frames) -> str:
    return f" frames {frames.text()}" if frames.text() else ""


def _norm(v: Tensor) -> Tensor:
    """Euclidean norm over the last axis with a finite gradient at 0."""
    return torch.sqrt((v * v).sum(-1) + EPS)


@dataclass(frozen=True)
class Near:
    """Distance between two joints at most ``radius`` metres."""

    joint_a: str
    joint_b: str
    radius: float
    frames: Frames = Frames()

    def text(self) -> str:
        return f"near {self.joint_a} {self.joint_b} {self.radius:g}{_suffix(self.frames)}"

    def violation(self, joints: Tensor, floor: Tensor) -> Tensor:
        """Per-frame metres beyond the radius (..., F), joints (..., F, 22, 3) of the constrained frames."""
        d = _norm(joints[..., JOINT_INDEX[self.joint_a], :] - joints[..., JOINT_INDEX[self.joint_b], :])
        return torch.relu(d - self.radius)


@dataclass(frozen=True)
class Above:
    """Joint height above the floor at least ``height`` metres."""

    joint: str
    height: float
    frames: Frames = Frames()

    def text(self) -> str:
        return f"above {self.joint} {self.height:g}{_suffix(self.frames)}"

    def violation(self, joints: Tensor, floor: Tensor) -> Tensor:
        return torch.relu(self.height - (joints[..., JOINT_INDEX[self.joint], 1] - floor[..., None]))


@dataclass(frozen=True)
class Below:
    """Joint height above the floor at most ``height`` metres."""

    joint: str
    height: float
    frames: Frames = Frames()

    def text(self) -> str:
        return f"below {self.joint} {self.height:g}{_suffix(self.frames)}"

    def violation(self, joints: Tensor, floor: Tensor) -> Tensor:
        return torch.relu(joints[..., JOINT_INDEX[self.joint], 1] - floor[..., None] - self.height)


@dataclass(frozen=True)
class Planted:
    """Joint on the floor (within its planted height) and still (within PLANTED_DRIFT of its mean position)."""

    joint: str
    frames: Frames = Frames()

    def text(self) -> str:
        return f"planted {self.joint}{_suffix(self.frames)}"

    @property
    def max_height(self) -> float:
        """Metres above the floor the joint may be."""
        return PLANTED_ANKLE_HEIGHT if self.joint.endswith("_ankle") else PLANTED_HEIGHT

    def violation(self, joints: Tensor, floor: Tensor) -> Tensor:
        j = joints[..., JOINT_INDEX[self.joint], :]
        xz = j[..., [0, 2]]
        drift = _norm(xz - xz.mean(-2, keepdim=True))
        return torch.relu(j[..., 1] - floor[..., None] - self.max_height) + torch.relu(drift - PLANTED_DRIFT)


@dataclass(frozen=True)
class Pitch:
    """Torso pitch within PITCH_TOLERANCE of ``degrees`` (pelvis->neck from vertical, forward positive)."""

    degrees: float
    frames: Frames = Frames()

    def text(self) -> str:
        return f"pitch {self.degrees:g}{_suffix(self.frames)}"

    def violation(self, joints: Tensor, floor: Tensor) -> Tensor:
        """Per-frame radians beyond the tolerance."""
        return torch.relu((torso_pitch(joints) - math.radians(self.degrees)).abs() - math.radians(PITCH_TOLERANCE))


Constraint = Near | Above | Below | Planted | Pitch


def torso_pitch(joints: Tensor) -> Tensor:
    """Signed torso pitch (radians) per frame of joints (..., 22, 3): the pelvis->neck vector in the sagittal plane.

    The facing direction (hips and shoulders, HumanML3D's) is held constant for the gradient, so guidance
    bends the torso instead of turning the hips."""
    r_hip, l_hip, r_sh, l_sh = FACE_JOINTS
    across = (joints[..., r_hip, :] - joints[..., l_hip, :] + joints[..., r_sh, :] - joints[..., l_sh, :]).detach()
    forward = torch.stack([across[..., 2], torch.zeros_like(across[..., 0]), -across[..., 0]], dim=-1)
    forward = forward / _norm(forward)[..., None]
    v = joints[..., JOINT_INDEX["neck"], :] - joints[..., JOINT_INDEX["pelvis"], :]
    return torch.atan2((v * forward).sum(-1), v[..., 1])


# ----------------------------------------------------------------------------- the parser

def _fail(text: str, token: str, why: str) -> ConstraintError:
    return ConstraintError(f"constraint {text!r}: bad token {token!r} ({why}); syntax: {SYNTAX}")


def _joint(text: str, token: str) -> str:
    if token not in JOINT_INDEX:
        raise _fail(text, token, "not a joint name; joints: " + ", ".join(JOINT_NAMES))
    return token


def _number(text: str, token: str, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise _fail(text, token, f"expected {what}") from None
    if not math.isfinite(value):
        raise _fail(text, token, f"expected a finite {what}")
    return value


def _frame(text: str, token: str) -> int | None:
    if token == "end":
        return None
    if not token.isdigit():
        raise _fail(text, token, "expected a frame index >= 0 or 'end'")
    return int(token)


def _frames(text: str, tokens: list[str]) -> Frames:
    """The optional ``frames <a>-<b|end>`` clause (the last two tokens)."""
    if not tokens:
        return Frames()
    if tokens[0] != "frames":
        raise _fail(text, tokens[0], "unexpected token; only 'frames <a>-<b|end>' may follow")
    if len(tokens) != 2:
        raise _fail(text, tokens[-1] if len(tokens) > 2 else "frames", "expected one range after 'frames'")
    first_token, dash, last_token = tokens[1].partition("-")
    if not first_token or (dash and not last_token):
        raise _fail(text, tokens[1], "expected <a>-<b|end>, e.g. 40-60 or 10-end")
    first = _frame(text, first_token)
    last = _frame(text, last_token) if dash else first
    if first is None:  # 'end' alone or 'end-end'
        if last is not None:
            raise _fail(text, tokens[1], "the first frame comes after the last")
        return Frames(None, None)
    if last is not None and last < first:
        raise _fail(text, tokens[1], "the first frame comes after the last")
    return Frames(first, last)


ARITY = {"near": 3, "above": 2, "below": 2, "planted": 1, "pitch": 1}


def parse_constraint(text: str) -> Constraint:
    """One constraint text -> its dataclass; a text off the syntax raises ConstraintError naming the bad token."""
    tokens = text.split()
    if not tokens:
        raise _fail(text, "", "empty constraint")
    kind = tokens[0].lower()
    if kind not in ARITY:
        raise _fail(text, tokens[0], "unknown constraint; one of " + ", ".join(ARITY))
    args, rest = tokens[1:1 + ARITY[kind]], tokens[1 + ARITY[kind]:]
    if len(args) < ARITY[kind] or "frames" in args:
        bad = "frames" if "frames" in args else tokens[-1]
        raise _fail(text, bad, f"'{kind}' takes {ARITY[kind]} argument(s) before 'frames'")
    frames = _frames(text, rest)
    if kind == "near":
        a, b = _joint(text, args[0]), _joint(text, args[1])
        if a == b:
            raise _fail(text, args[1], "the two joints must differ")
        radius = _number(text, args[2], "a radius in metres")
        if radius <= 0:
            raise _fail(text, args[2], "the radius must be > 0")
        return Near(a, b, radius, frames)
    if kind in ("above", "below"):
        joint, height = _joint(text, args[0]), _number(text, args[1], "a height in metres")
        return (Above if kind == "above" else Below)(joint, height, frames)
    if kind == "planted":
        return Planted(_joint(text, args[0]), frames)
    degrees = _number(text, args[0], "an angle in degrees")
    if not -90.0 <= degrees <= 90.0:
        raise _fail(text, args[0], "the pitch must lie in -90..90 degrees")
    return Pitch(degrees, frames)


def parse_constraints(texts: str | Sequence[str]) -> list[Constraint]:
    """Constraint texts (each possibly several joined with ';') -> the constraints, in order; '' gives none."""
    if isinstance(texts, str):
        texts = [texts]
    return [parse_constraint(piece) for text in texts for piece in text.split(";") if piece.strip()]


def read_constraint_file(path: str | Path) -> list[str]:
    """The constraint texts of a YAML file holding a list of strings (checked by ``parse_constraints``)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise DataError(path, f"cannot read the constraints file ({type(err).__name__})",
                        "write a YAML list of constraint strings") from None
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise DataError(path, "expected a YAML list of constraint strings",
                        "write e.g. ['near right_wrist left_shoulder 0.05 frames 40-60']")
    parse_constraints(data)
    return data


def constraint_text(constraints: Sequence[Constraint]) -> str:
    """The canonical text of constraints, joined with '; '."""
    return "; ".join(c.text() for c in constraints)


def check_frames(constraints: Sequence[Constraint], length: int) -> None:
    """Refuse constraints whose frames start after the last frame of a ``length``-frame motion."""
    for c in constraints:
        c.frames.resolve(length)


# ----------------------------------------------------------------------------- losses on joints

def floor_height(joints: Tensor) -> Tensor:
    """The floor (...,) of motions (..., T, 22, 3): the lowest foot-joint height over their frames.

    Differentiable (through the lowest foot joint): heights above the floor do not change when the whole body
    moves up or down, so guidance cannot "satisfy" a height by moving the root together with the floor."""
    return joints[..., list(FOOT_JOINTS), 1].flatten(-2).amin(-1)


def _frames_of(c: Constraint, length: int) -> slice:
    return slice(*c.frames.resolve(length))


def frame_violations(c: Constraint, joints: Tensor, floor: Tensor | None = None) -> Tensor:
    """Per-frame violation (..., F) of one constraint on motions' joints (..., T, 22, 3) (its constrained frames)."""
    floor = floor_height(joints) if floor is None else floor
    return c.violation(joints[..., _frames_of(c, joints.shape[-3]), :, :], floor)


def constraint_loss(constraints: Sequence[Constraint], joints: Tensor) -> Tensor:
    """Sum over constraints of each one's mean violation over its frames (...,), for motions (..., T, 22, 3) of
    the same length; 0 without constraints."""
    floor = floor_height(joints)
    loss = joints.new_zeros(joints.shape[:-3])
    for c in constraints:
        loss = loss + frame_violations(c, joints, floor).mean(-1)
    return loss


def satisfaction(constraints: Sequence[Constraint], joints: np.ndarray) -> list[dict[str, object]]:
    """Per constraint of one motion (T, 22, 3): its text, mean violation (m, or degrees for pitch) and the
    fraction of its frames that satisfy it (violation 0)."""
    x = torch.as_tensor(np.asarray(joints, dtype=np.float64))
    out: list[dict[str, object]] = []
    for c in constraints:
        v = frame_violations(c, x).numpy()
        unit = "degrees" if isinstance(c, Pitch) else "m"
        mean = float(np.degrees(v.mean())) if isinstance(c, Pitch) else float(v.mean())
        out.append({"constraint": c.text(), "violation": mean, "unit": unit,
                    "satisfied_fraction": float((v <= 1e-9).mean())})
    return out


# ----------------------------------------------------------------------------- guidance and inpainting

def bone_lengths(joints: Tensor) -> Tensor:
    """Lengths (..., T, 21) of the 21 bones (each joint to its parent) of joints (..., T, 22, 3)."""
    return _norm(joints[..., 1:, :] - joints[..., list(PARENTS[1:]), :])


def polyak_scale(losses: Tensor, grad: Tensor, strength: float) -> Tensor:
    """Per sample, the step size strength * L / |g|^2 along -g that removes ``strength`` of the linearised loss
    (0 where the gradient vanishes)."""
    norm2 = grad.flatten(1).pow(2).sum(1)
    return torch.where(norm2 > EPS, strength * losses / norm2.clamp_min(EPS), 0.0)


def part_dims(parts: Sequence[str]) -> Tensor:
    """Boolean (263,) mask over the packed layout selecting the dims of ``parts``."""
    unknown = [p for p in parts if p not in PART_NAMES]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}; parts: {', '.join(PART_NAMES)}")
    return torch.cat([torch.full((PART_DIMS[p],), p in parts, dtype=torch.bool) for p in PART_NAMES])


def reference_parts(features: np.ndarray, mean: np.ndarray, std: np.ndarray, window: int) -> Tensor:
    """A reference motion's de-normalised features (T, 263) -> normalised packed features (1, window, 263), float32,
    zero after its T frames (the inpainting reference of ``MotionGuidance``)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != len(mean):
        raise ValueError(f"reference features must have shape (T, {len(mean)}), got {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError("reference features contain NaN or inf")
    normalised = torch.from_numpy((features[:window] - mean) / std).float()
    out = torch.zeros(1, window, normalised.shape[1])
    out[0, :len(normalised)] = features_to_packed(normalised)
    return out


@dataclass
class MotionGuidance:
    """The ``guidance`` of ``models.diffusion.sample``: constraint guidance and part inpainting on x0 at each step.

    ``constraints`` holds one list per sample of the batch (empty: that sample is not guided); ``mean``/``std``
    (263,) de-normalise the features; ``reference`` (B, window, 263) packed normalised features and
    ``keep_parts`` name what inpainting keeps.
    """

    constraints: Sequence[Sequence[Constraint]]
    mean: Tensor
    std: Tensor
    strength: float = DEFAULT_STRENGTH
    iterations: int = DEFAULT_ITERATIONS
    reference: Tensor | None = None
    keep_parts: tuple[str, ...] = ()
    keep_bones: bool = True

    def __post_init__(self) -> None:
        if self.strength < 0 or not math.isfinite(self.strength):
            raise ValueError(f"guidance strength {self.strength} must be a finite number >= 0")
        if self.iterations < 1:
            raise ValueError(f"guidance iterations {self.iterations} must be >= 1")
        if self.keep_parts and self.reference is None:
            raise ValueError("inpainting keeps parts of a reference motion: give the reference")
        self._keep = part_dims(self.keep_parts)

    def correct(self, x0: Tensor, mask: Tensor) -> Tensor:
        """One guidance step on packed x0 (B, window, 263): the minimum-norm step removing ``strength`` of each
        sample's linearised violation (valid frames only: ``mask`` (B, window))."""
        if self.strength == 0 or not any(self.constraints):
            return x0
        lengths = mask.sum(1).tolist()
        groups: dict[tuple[tuple[Constraint, ...], int], list[int]] = {}  # same constraints and length: one batch
        for b, (cs, n) in enumerate(zip(self.constraints, lengths)):
            if cs:
                groups.setdefault((tuple(cs), int(n)), []).append(b)
        mean, std = self.mean.to(x0), self.std.to(x0)
        with torch.enable_grad():
            x = x0.detach().clone().requires_grad_(True)
            joints = packed_to_joints(x, mean, std)
            losses = joints.new_zeros(len(x0))
            for (cs, n), members in groups.items():
                index = torch.tensor(members, device=x0.device)
                losses = losses.index_add(0, index, constraint_loss(cs, joints[index, :n]))
            (grad,) = torch.autograd.grad(losses.sum(), x)
        return x0 - polyak_scale(losses.detach(), grad, self.strength)[:, None, None] * grad

    def restore_bones(self, x0: Tensor, mask: Tensor, bones: Tensor) -> Tensor:
        """The minimum-norm step that brings bone lengths back within BONE_TOLERANCE of ``bones`` (B, window, 21)
        (those of x0 before guidance), on the guided motions' valid frames."""
        valid = (mask & torch.tensor([bool(cs) for cs in self.constraints], device=mask.device)[:, None]).to(x0)
        with torch.enable_grad():
            x = x0.detach().clone().requires_grad_(True)
            drift = (bone_lengths(packed_to_joints(x, self.mean.to(x0), self.std.to(x0))) - bones).abs()
            losses = (torch.relu(drift - BONE_TOLERANCE).mean(-1) * valid).sum(1) / valid.sum(1).clamp_min(1)
            (grad,) = torch.autograd.grad(losses.sum(), x)
        return x0 - polyak_scale(losses.detach(), grad, self.strength)[:, None, None] * grad

    def __call__(self, x0: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        """The corrected x0 of one denoising step (``t`` is not used: every step is guided alike)."""
        if len(self.constraints) != len(x0):
            raise ValueError(f"{len(self.constraints)} constraint lists for a batch of {len(x0)}")
        bones = None
        if self.keep_bones and self.strength > 0 and any(self.constraints):
            bones = bone_lengths(packed_to_joints(x0, self.mean.to(x0), self.std.to(x0))).detach()
        for _ in range(self.iterations):
            x0 = self.correct(x0, mask)
            if bones is not None:
                x0 = self.restore_bones(x0, mask, bones)
        if self.reference is not None and bool(self._keep.any()):
            keep = self._keep.to(x0.device)
            x0 = torch.where(keep, self.reference.to(x0), x0)
        return x0
