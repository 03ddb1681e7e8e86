"""A whole-body baseline in the style of MDM (Tevet et al., ICLR 2023): the holistic model LGTM's part-level
claim is measured against.

One transformer encoder denoises the whole 263-d HumanML3D feature vector per frame (the six parts packed
back together), conditioned only on the whole caption: a condition token (timestep embedding + the
whole-caption text latent, TEXT_SLOTS[0]) is prepended to the frame tokens, as MDM does with its CLIP
feature, and sinusoidal positions are added. It predicts x0, and takes and returns the same part dicts as
``models.lgtm.LGTM``, so the trainer, the samplers, classifier-free guidance (zero latents as the null
condition) and the evaluation run on it unchanged.

Deviations from MDM: the text feature is the whole-body TMR latent that LGTM also receives (not CLIP),
the schedule is LGTM's (cosine, 1000 steps), and MDM's geometric losses are not used (same loss as LGTM).
Size: width ``6 * dim`` (the Full-Body Optimizer's width), ``baseline_layers`` layers (6 by default) with
feed-forward ``optimizer_ff``: at the paper settings that is about LGTM's parameter count
(tests/test_baseline.py prints both).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import Tensor, nn

from models.diffusion import check_text_latents, pack_parts, unpack_parts
from motion.core.parts import PART_DIMS, PART_NAMES

if TYPE_CHECKING:
    from models.lgtm import LGTMConfig

FEATURE_DIM = sum(PART_DIMS.values())  # 263


def sinusoidal_positions(length: int, width: int) -> Tensor:
    """The fixed sinusoidal position table (length, width) of Vaswani et al. (2017), as MDM uses it."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return table


class WholeBodyDenoiser(nn.Module):
    """x0 of the whole body from x_t, the timestep and the whole-caption latent (the part latents are unused)."""

    def __init__(self, cfg: LGTMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = cfg.dim * len(PART_NAMES)
        self.input_projection = nn.Linear(FEATURE_DIM, width)
        self.time_projection = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(width, width, act_fn="silu")
        self.text_adapter = nn.Linear(cfg.text_dim, width)
        self.register_buffer("positions", sinusoidal_positions(cfg.window + 1, width), persistent=False)
        layer = nn.TransformerEncoderLayer(width, cfg.heads, cfg.optimizer_ff, cfg.dropout,
                                           activation=nn.functional.gelu, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.baseline_layers, enable_nested_tensor=False)
        self.output_projection = nn.Linear(width, FEATURE_DIM)

    def forward(self, x_t: dict[str, Tensor], timesteps: Tensor, text_latents: Tensor,
                mask: Tensor) -> dict[str, Tensor]:
        """x_t: part -> (B, T, d_part); timesteps (B,); text_latents (B, 7, d_text); mask (B, T) -> x0 per part."""
        check_text_latents(text_latents)
        mask = mask.bool()
        frames = pack_parts(x_t)
        b, t, _ = frames.shape
        condition = self.time_embedding(self.time_projection(timesteps).to(frames.dtype))
        condition = condition + self.text_adapter(text_latents[:, 0])
        tokens = torch.cat([condition[:, None], self.input_projection(frames)], dim=1) + self.positions[: t + 1]
        padding = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=mask.device), ~mask], dim=1)
        h = self.transformer(tokens, src_key_padding_mask=padding)
        return unpack_parts(self.output_projection(h[:, 1:]))
