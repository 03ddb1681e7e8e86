"""Feature normalisation statistics: HumanML3D's group-averaged Mean/Std and TMR's per-dim stats.

Both are over every frame of every clip of a split. Moments are accumulated clip by clip (Chan et
al.'s parallel update), so the whole dataset never has to sit in memory.
"""
from __future__ import annotations

import numpy as np

from motion.core.parts import FEATURE_DIM, FEATURE_GROUPS, PART_INDICES, PART_NAMES


class Moments:
    """Running per-dimension count, mean and sum of squared deviations of (T, D) feature frames."""

    def __init__(self, dim: int = FEATURE_DIM) -> None:
        self.dim = dim
        self.count = 0
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)

    def update(self, frames: np.ndarray) -> None:
        """Add the frames (T, D) of one clip."""
        frames = np.asarray(frames, dtype=np.float64).reshape(-1, self.dim)
        n = len(frames)
        if n == 0:
            return
        mean = frames.mean(axis=0)
        m2 = ((frames - mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    def std(self, ddof: int = 0) -> np.ndarray:
        """Per-dimension standard deviation (ddof=0: numpy's default; ddof=1: torch's)."""
        if self.count <= ddof:
            raise ValueError(f"need more than {ddof} frames for a standard deviation, got {self.count}")
        return np.sqrt(self.m2 / (self.count - ddof))


def group_average_std(std: np.ndarray, groups: tuple[slice, ...] = FEATURE_GROUPS) -> np.ndarray:
    """Replace each dim's std by the mean std of its feature group, as HumanML3D's cal_mean_variance."""
    out = np.array(std, dtype=np.float64, copy=True)
    for group in groups:
        out[group] = out[group].mean()
    return out


def humanml3d_mean_std(moments: Moments) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D ``Mean.npy`` and ``Std.npy`` (263,) float32: per-dim mean, group-averaged std."""
    return moments.mean.astype(np.float32), group_average_std(moments.std(ddof=0)).astype(np.float32)


def part_stats(moments: Moments) -> dict[str, np.ndarray]:
    """TMR-style per-dim mean/std (unbiased, as torch.std) for whole_body and each of the six parts.

    Keys ``<name>_mean`` and ``<name>_std``; a part's vector is its slice of the 263 dims
    (motion.core.parts.PART_INDICES order), so its stats are the matching slices."""
    mean, std = moments.mean, moments.std(ddof=1)
    stats = {"whole_body_mean": mean.astype(np.float32), "whole_body_std": std.astype(np.float32)}
    for part in PART_NAMES:
        stats[f"{part}_mean"] = mean[PART_INDICES[part]].astype(np.float32)
        stats[f"{part}_std"] = std[PART_INDICES[part]].astype(np.float32)
    return stats
