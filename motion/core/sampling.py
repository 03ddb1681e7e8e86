"""Sampler settings of the LGTM diffusion: the one description of how a generation samples.

The library (evaluation rows, the prompt study, cache keys) and the models (``models.diffusion.sample``,
``models.inference``) share this type; its values come from params.yaml (``lgtm.sampling``, overridden by a
config, an evaluation row or the generate command's flags).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SAMPLERS: tuple[str, ...] = ("ddim", "dpmsolver++")
# Which of the 1000 training timesteps a run of N steps visits (diffusers' ``timestep_spacing``):
# "trailing" starts at t = 999 for every N (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample
# Steps are Flawed"), so DDIM and DPM-Solver++ rows of any step count start from pure noise; "leading" is
# what the official LGTM code uses (20 DDIM steps start at t = 950).
TIMESTEP_SPACINGS: tuple[str, ...] = ("trailing", "leading")


@dataclass(frozen=True)
class SamplingConfig:
    """How a generation samples: sampler, step count, DDIM eta, classifier-free guidance scale, timestep spacing.

    The paper samples with 1000 deterministic DDIM steps (eta 0) and no guidance (scale 1); at 1000 steps
    both spacings visit every timestep.
    """

    sampler: str          # ddim | dpmsolver++
    steps: int            # denoising steps, 1..1000
    eta: float            # DDIM only: 0 = deterministic
    guidance_scale: float  # 1 = no classifier-free guidance
    timestep_spacing: str = "trailing"  # trailing | leading (the official code's)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {SAMPLERS}")
        if self.timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(f"unknown timestep_spacing {self.timestep_spacing!r}; choose one of {TIMESTEP_SPACINGS}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplingConfig:
        """Build from a mapping that holds every field (other keys, e.g. an evaluation row's name, are ignored)."""
        missing = [k for k in cls.__dataclass_fields__ if k not in values]
        if missing:
            raise KeyError(f"sampling settings lack {missing} (set them in params.yaml lgtm.sampling)")
        return cls(**{k: values[k] for k in cls.__dataclass_fields__})
