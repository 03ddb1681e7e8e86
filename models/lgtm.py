"""LGTM denoiser: six Part Motion Encoders and a Full-Body Optimizer that predict clean part motions x0.

Inputs per sample: noisy part features x_t (one tensor per part, HumanML3D-normalised), the
diffusion timestep, seven frozen TMR text latents (whole caption first, then the six part texts in
``motion.core.parts.PART_NAMES`` order) and the valid-frame mask. Conditioning is additive: each part's
text latent (through its own trainable Linear(256, d) adapter) plus the timestep embedding is added
to every frame of that part's stream; the whole-caption latent is added to every part slot before
the full-body attention.

Deviations from the official code (see also models/conformer.py):
- one canonical part order (PART_NAMES) everywhere, so every part is decoded by the head of the
  encoder that encoded it (the official code stacked streams in sorted order but picked heads in
  declaration order, cross-wiring four of the six parts);
- padded frames never change valid outputs: key-padding masks in both attentions, zeroed padding
  before every frame-mixing layer (conv, channel attention, SmoothNet).
The channel attention over the frame axis is kept (``channel_attention=True``): with zeroed
padding it is exact for every length up to the window; like SmoothNet it ties the model to one
window length (196 frames in the paper config), which the official model has as well.

Official-compatible options (``OFFICIAL_OPTIONS``; models/official/lgtm_ckpt.py sets them to load the
released checkpoint, the defaults keep the fixed architecture): ``ff_hidden``/``ff_shared`` (the 2-unit
feed-forward shared by both macaron halves), ``conv_norm="batch"``, ``mask_padding=False`` (no
zeroing of padded frames anywhere) and ``part_order="official"`` (streams stacked in sorted part
order, head ``PART_NAMES[i]`` applied to slot ``i``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from safetensors.torch import load_file
from torch import Tensor, nn

from models.checkpoint import CONFIG_FILE, MODEL_FILE
from models.conformer import ConformerBlock, zero_padding
from models.diffusion import check_text_latents
from models.smoothnet import SmoothNet
from motion.core.errors import DataError
from motion.core.parts import PART_DIMS, PART_NAMES

PART_ORDERS = ("canonical", "official")
ARCHITECTURES = ("lgtm", "whole_body")
# Options that only the official-compatible model changes, and the ablation / baseline switches:
# config.json records them only when not at their default (so the full model's config is unchanged).
OFFICIAL_OPTIONS: tuple[str, ...] = ("ff_hidden", "ff_shared", "mask_padding", "part_order")
VARIANT_OPTIONS: tuple[str, ...] = ("full_body_attention", "smoothnet", "architecture", "baseline_layers")


def stream_order(part_order: str) -> tuple[str, ...]:
    """Order in which the part streams are stacked: PART_NAMES, or sorted names for the official wiring."""
    if part_order not in PART_ORDERS:
        raise ValueError(f"part_order must be one of {PART_ORDERS}, got {part_order!r}")
    return PART_NAMES if part_order == "canonical" else tuple(sorted(PART_NAMES))


@dataclass(frozen=True)
class LGTMConfig:
    """Hyper-parameters of the LGTM denoiser (paper values as defaults)."""

    dim: int = 128                  # Z: width of each part stream
    conformer_blocks: int = 4       # per Part Motion Encoder
    attention_layers: int = 4       # Full-Body Optimizer transformer layers (width 6 * dim)
    heads: int = 4
    ff_expansion: int = 2           # conformer feed-forward hidden = ff_expansion * dim
    kernel_size: int = 3            # depthwise convolution
    optimizer_ff: int = 1024        # feed-forward width of the full-body transformer
    smoothnet_hidden: int = 512
    smoothnet_res_hidden: int = 256
    smoothnet_blocks: int = 3
    dropout: float = 0.1
    window: int = 196               # frames per sample (padded); SmoothNet and channel attention depend on it
    text_dim: int = 256             # TMR latent size
    channel_attention: bool = True
    conv_norm: str = "layer"        # "layer" (mask-safe) or "batch" (official BatchNorm1d)
    ff_hidden: int = 0              # > 0: absolute conformer feed-forward width (official: 2)
    ff_shared: bool = False         # one feed-forward module for both macaron halves (official)
    mask_padding: bool = True       # zero padded frames before frame-mixing layers (official: False)
    part_order: str = "canonical"   # "official": sorted stream stacking, heads in declaration order
    # Ablations (trained without the component; the defaults are the full model):
    full_body_attention: bool = True  # False ("no_optimizer"): no full-body transformer, no whole-caption latent
    smoothnet: bool = True            # False ("no_smoothnet"): no SmoothNet before the part heads
    architecture: str = "lgtm"      # "whole_body": the MDM-style baseline (models.baseline), same I/O
    baseline_layers: int = 6        # whole_body: transformer layers of width 6 * dim (~LGTM's size at paper settings)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LGTMConfig:
        """Build from a dict, ignoring keys that are not model hyper-parameters."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the hyper-parameters (for config.json); optional switches only when not at their default."""
        values = asdict(self)
        defaults = LGTMConfig()
        optional = OFFICIAL_OPTIONS + VARIANT_OPTIONS
        return {k: v for k, v in values.items() if k not in optional or v != getattr(defaults, k)}


class PartMotionEncoder(nn.Module):
    """Linear input projection, additive (text + timestep) condition, then conformer blocks."""

    def __init__(self, part_dim: int, cfg: LGTMConfig) -> None:
        super().__init__()
        self.input_projection = nn.Linear(part_dim, cfg.dim)
        self.text_adapter = nn.Linear(cfg.text_dim, cfg.dim)
        self.blocks = nn.ModuleList([
            ConformerBlock(cfg.dim, cfg.heads, cfg.ff_expansion, cfg.kernel_size, cfg.dropout,
                           cfg.window if cfg.channel_attention else None, cfg.conv_norm,
                           ff_hidden=cfg.ff_hidden, ff_shared=cfg.ff_shared, mask_padding=cfg.mask_padding)
            for _ in range(cfg.conformer_blocks)
        ])

    def forward(self, x: Tensor, text_latent: Tensor, time_embedding: Tensor, mask: Tensor) -> Tensor:
        """Encode x (B, T, part_dim) with its text latent (B, 256) and timestep embedding (B, d) -> (B, T, d)."""
        h = self.input_projection(x) + (self.text_adapter(text_latent) + time_embedding)[:, None, :]
        for block in self.blocks:
            h = block(h, mask)
        return h


class FullBodyOptimizer(nn.Module):
    """Attention over time on the concatenated part streams + whole text, residual, SmoothNet, part heads.

    Ablations drop one component each: ``full_body_attention=False`` leaves the streams unmixed (each part
    decoded from its own stream; the whole-caption latent is then unused), ``smoothnet=False`` skips
    SmoothNet."""

    def __init__(self, cfg: LGTMConfig) -> None:
        super().__init__()
        self.full_body_attention = cfg.full_body_attention
        if cfg.full_body_attention:
            self.text_adapter = nn.Linear(cfg.text_dim, cfg.dim)
            width = cfg.dim * len(PART_NAMES)
            layer = nn.TransformerEncoderLayer(width, cfg.heads, cfg.optimizer_ff, cfg.dropout,
                                               activation=nn.functional.silu, batch_first=True)
            self.transformer = nn.TransformerEncoder(layer, cfg.attention_layers, enable_nested_tensor=False)
        self.smoothnet = (SmoothNet(cfg.window, cfg.smoothnet_hidden, cfg.smoothnet_res_hidden,
                                    cfg.smoothnet_blocks, cfg.dropout, cfg.mask_padding)
                          if cfg.smoothnet else None)
        self.mask_padding = cfg.mask_padding
        self.heads = nn.ModuleDict({p: nn.Linear(cfg.dim, PART_DIMS[p]) for p in PART_NAMES})

    def forward(self, streams: Tensor, whole_latent: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """Map stacked part streams (B, T, 6, d) and the whole-caption latent (B, 256) to x0 per part.

        Slot ``i`` is decoded by the head of ``PART_NAMES[i]`` (with the official stacking order this
        is the official cross-wiring).
        """
        b, t, n, d = streams.shape
        h = streams
        if self.full_body_attention:
            h = (streams + self.text_adapter(whole_latent)[:, None, None, :]).reshape(b, t, n * d)
            if self.mask_padding:
                h = zero_padding(h, mask)
            h = self.transformer(h, src_key_padding_mask=~mask)
            h = h.reshape(b, t, n, d) + streams
        if self.smoothnet is not None:
            h = self.smoothnet(h, mask)
        return {p: self.heads[p](h[:, :, i]) for i, p in enumerate(PART_NAMES)}


class LGTM(nn.Module):
    """The denoiser: predicts x0 for each part from x_t, the timestep, 7 text latents and a frame mask."""

    def __init__(self, cfg: LGTMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.time_projection = Timesteps(cfg.dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(cfg.dim, cfg.dim, act_fn="silu")
        self.part_encoders = nn.ModuleDict({p: PartMotionEncoder(PART_DIMS[p], cfg) for p in PART_NAMES})
        self.full_body_optimizer = FullBodyOptimizer(cfg)
        self.stream_order = stream_order(cfg.part_order)

    def forward(self, x_t: dict[str, Tensor], timesteps: Tensor, text_latents: Tensor,
                mask: Tensor) -> dict[str, Tensor]:
        """x_t: part -> (B, T, d_part); timesteps (B,); text_latents (B, 7, 256) in TEXT_SLOTS order; mask (B, T)."""
        check_text_latents(text_latents)
        mask = mask.bool()
        time = self.time_embedding(self.time_projection(timesteps).to(text_latents.dtype))
        slot = {p: i + 1 for i, p in enumerate(PART_NAMES)}
        streams = torch.stack([
            self.part_encoders[p](x_t[p], text_latents[:, slot[p]], time, mask) for p in self.stream_order
        ], dim=2)
        return self.full_body_optimizer(streams, text_latents[:, 0], mask)


def build_denoiser(cfg: LGTMConfig) -> nn.Module:
    """The denoiser ``cfg`` describes: LGTM (with its ablation switches) or the whole-body baseline."""
    if cfg.architecture == "whole_body":
        from models.baseline import WholeBodyDenoiser

        return WholeBodyDenoiser(cfg)
    return LGTM(cfg)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_lgtm(folder: str | Path, device: str | torch.device = "cpu", weights: str = MODEL_FILE) -> nn.Module:
    """Load a trained denoiser (``config.json`` + ``model.safetensors``) in eval mode: LGTM, one of its
    ablations or the whole-body baseline, as the config's ``model`` section says."""
    folder = Path(folder)
    cfg_path = folder / CONFIG_FILE
    if not cfg_path.is_file():
        raise DataError(cfg_path, "LGTM config is missing", "run `python -m stages.train_lgtm`")
    cfg = LGTMConfig.from_dict(json.loads(cfg_path.read_text(encoding="utf-8"))["model"])
    model = build_denoiser(cfg)
    model.load_state_dict(load_file(str(folder / weights), device=str(device)))
    return model.to(device).eval()
