"""Sampler settings of the LGTM diffusion: the one description of how a generation samples.

The library (evaluation rows, the prompt study, cache keys) and the models (``models.diffusion.sample``,
``models.inference``) share this type; its values come from params.yaml (``lgtm.sampling``, overridden by a
config, an evaluation row or the generate command's flags).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SAMPLERS: tuple[str, ...] = ("ddim", "dpmsolver++")


@dataclass(frozen=True)
class SamplingConfig:
    """How a generation samples: sampler, step count, DDIM eta, classifier-free guidance scale.

    The paper samples with 1000 deterministic DDIM steps (eta 0) and no guidance (scale 1).
    """

    sampler: str          # ddim | dpmsolver++
    steps: int            # denoising steps, 1..1000
    eta: float            # DDIM only: 0 = deterministic
    guidance_scale: float  # 1 = no classifier-free guidance

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {SAMPLERS}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplingConfig:
        """Build from a mapping that holds every field (other keys, e.g. an evaluation row's name, are ignored)."""
        missing = [k for k in cls.__dataclass_fields__ if k not in values]
        if missing:
            raise KeyError(f"sampling settings lack {missing} (set them in params.yaml lgtm.sampling)")
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})
