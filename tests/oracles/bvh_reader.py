"""Test oracle: a BVH reader with forward kinematics, to check the files ``motion.export.bvh`` writes.

``read_bvh`` parses any single-root BVH (any channel order, End Sites ignored) and returns the
joints' world positions by forward kinematics; the root position is its OFFSET plus its position
channels (as Blender imports it). Rotations come from scipy, independently of the writer's helpers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from motion.core.errors import DataError


@dataclass
class BVH:
    """A parsed BVH file: joint names, parents, offsets (J, 3), channels per joint, frame time, values (T, C)."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]]
    frame_time: float
    values: np.ndarray


def parse_bvh(text: str, path: str | Path = "<string>") -> BVH:
    """Parse BVH text (one root, any channel order; End Sites are skipped)."""
    head, sep, motion = text.partition("MOTION")
    if not sep:
        raise DataError(path, "no MOTION section", "write a complete BVH file (HIERARCHY then MOTION)")
    tokens = head.split()
    if not tokens or tokens[0] != "HIERARCHY":
        raise DataError(path, "does not start with HIERARCHY", "give a BVH file")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []  # open blocks: joint index, or -2 for an End Site
    pending: int | None = None
    i = 1
    try:
        while i < len(tokens):
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                if tok == "ROOT" and names:
                    raise DataError(path, "several ROOT joints", "export a single skeleton")
                parent = next((s for s in reversed(stack) if s >= 0), -1)
                names.append(tokens[i + 1])
                parents.append(parent)
                offsets.append([0.0, 0.0, 0.0])
                channels.append([])
                pending = len(names) - 1
                i += 2
            elif tok == "End":
                pending = -2
                i += 2
            elif tok == "{":
                if pending is None:
                    raise DataError(path, "a '{' without a joint", "fix the HIERARCHY section")
                stack.append(pending)
                pending = None
                i += 1
            elif tok == "}":
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                if stack[-1] >= 0:
                    offsets[stack[-1]] = [float(v) for v in tokens[i + 1:i + 4]]
                i += 4
            elif tok == "CHANNELS":
                n = int(tokens[i + 1])
                channels[stack[-1]] = tokens[i + 2:i + 2 + n]
                i += 2 + n
            else:
                raise DataError(path, f"unexpected token {tok!r} in HIERARCHY", "fix the file")
        lines = motion.strip().splitlines()
        frames = int(lines[0].split(":")[1])
        frame_time = float(lines[1].split(":")[1])
        values = np.array([[float(v) for v in line.split()] for line in lines[2:2 + frames] if line.strip()],
                          dtype=np.float64)
    except (IndexError, ValueError) as err:
        raise DataError(path, f"malformed BVH ({err})", "re-export the file") from err
    if stack:
        raise DataError(path, "unbalanced braces in HIERARCHY", "fix the file")
    width = sum(len(c) for c in channels)
    values = values.reshape(-1, width) if values.size else np.zeros((0, width))
    if len(values) != frames:
        raise DataError(path, f"header says {frames} frames, found {len(values)} rows of {width} values",
                        "re-export the file")
    return BVH(names, parents, np.array(offsets, dtype=np.float64), channels, frame_time, values)


def bvh_forward_kinematics(bvh: BVH) -> np.ndarray:
    """World positions (T, J, 3) of every joint of a parsed BVH."""
    frames, num = len(bvh.values), len(bvh.names)
    positions = np.zeros((frames, num, 3))
    world = np.zeros((frames, num, 3, 3))
    if frames == 0:
        return positions
    column = 0
    for j in range(num):
        rot = np.broadcast_to(np.eye(3), (frames, 3, 3)).copy()
        shift = np.zeros((frames, 3))
        for name in bvh.channels[j]:
            v = bvh.values[:, column]
            column += 1
            axis, kind = name[0].upper(), name[1:].lower()
            if kind == "rotation":
                rot = rot @ Rotation.from_euler(axis.lower(), v[:, None], degrees=True).as_matrix()
            elif kind == "position":
                shift[:, "XYZ".index(axis)] = v
            else:
                raise ValueError(f"unknown BVH channel {name!r}")
        p = bvh.parents[j]
        if p < 0:
            positions[:, j] = bvh.offsets[j] + shift
            world[:, j] = rot
        else:
            local = bvh.offsets[j] + shift
            local = np.broadcast_to(local, shift.shape)
            positions[:, j] = positions[:, p] + np.einsum("tij,tj->ti", world[:, p], local)
            world[:, j] = world[:, p] @ rot
    return positions


def read_bvh(path: str | Path) -> tuple[list[str], list[int], np.ndarray, np.ndarray]:
    """Read a BVH file: (joint names, parents, offsets (J, 3), world positions (T, J, 3)) by forward kinematics."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "BVH file not found", "check the path")
    bvh = parse_bvh(path.read_text(encoding="utf-8", errors="replace"), path)
    return bvh.names, bvh.parents, bvh.offsets, bvh_forward_kinematics(bvh)


def read_bvh_frame_time(path: str | Path) -> float:
    """Seconds per frame of a BVH file."""
    return parse_bvh(Path(path).read_text(encoding="utf-8", errors="replace"), path).frame_time
