"""Conformer block of LGTM's Part Motion Encoder (after Gulati et al. 2020), masked for variable lengths.

Order inside a block: half-step feed-forward -> attention module -> convolution module ->
half-step feed-forward -> LayerNorm (macaron style). The attention module has LGTM's two
sub-blocks: self-attention over frames, then self-attention over channels (the channels are the
tokens and the frame axis is their embedding, so its width is the fixed window length).

Deviations from the official code (intended behaviour instead of its accidents):
- the two macaron feed-forward modules have separate weights, and their hidden width is
  ``ff_expansion * dim`` (the official code used the expansion factor 2 as an absolute width and
  assigned one module twice, so both halves shared a 2-unit FFN);
- padded frames are zeroed before every operation that mixes frames (depthwise convolution,
  the channel attention over the frame axis), and frame attention uses a key-padding mask, so a
  sample's valid outputs never depend on what its padded frames contain;
- the convolution module normalises with a per-frame LayerNorm by default (``conv_norm="layer"``)
  instead of BatchNorm: batch statistics would mix padded frames and other samples into every
  output and make multi-process training differ from one large batch. ``conv_norm="batch"``
  restores the official BatchNorm1d.
Official-compatible options (to load the released checkpoint; defaults keep the fixed block):
``ff_hidden`` (absolute feed-forward width), ``ff_shared`` (one feed-forward for both macaron
halves) and ``mask_padding=False`` (padded frames are not zeroed; only the frame attention's
key-padding mask is used).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Transformer sinusoidal position table (length, dim): sin on even channels, cos on odd ones."""
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: dim // 2])
    return table


def zero_padding(x: Tensor, mask: Tensor) -> Tensor:
    """Zero the padded frames of x (B, T, C) given the valid-frame mask (B, T)."""
    return x * mask[..., None].to(x.dtype)


class FeedForward(nn.Module):
    """Pre-norm feed-forward module: LN -> Linear(d, e*d) -> SiLU -> Dropout -> Linear(e*d, d) -> Dropout."""

    def __init__(self, dim: int, expansion: int, dropout: float, hidden: int = 0) -> None:
        super().__init__()
        width = hidden if hidden > 0 else expansion * dim  # hidden > 0: absolute width (official: 2 units)
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, width), nn.SiLU(), nn.Dropout(dropout),
            nn.Linear(width, dim), nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the module (no residual; the block adds half of it)."""
        return self.net(x)


class FrameAttention(nn.Module):
    """Self-attention over frames: LN, add sinusoidal positions, multi-head attention with a padding mask."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Residual update for x (B, T, C); mask (B, T) is True on valid frames."""
        h = self.norm(x)
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device).to(h.dtype)
        h, _ = self.attn(h, h, h, key_padding_mask=~mask, need_weights=False)
        return self.dropout(h)


class ChannelAttention(nn.Module):
    """Self-attention among channels whose embeddings are their (zero-padded) series over the window."""

    def __init__(self, dim: int, window: int, heads: int, dropout: float, mask_padding: bool = True) -> None:
        super().__init__()
        if window % heads:
            raise ValueError(f"window {window} must be divisible by the number of heads {heads}")
        self.window = window
        self.mask_padding = mask_padding
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(window, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Residual update for x (B, T, C) with T equal to the window; padded frames are zeroed first."""
        if x.shape[1] != self.window:
            raise ValueError(f"channel attention needs {self.window} frames (the training window), got {x.shape[1]}")
        h = self.norm(x)
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device).to(h.dtype)
        if self.mask_padding:
            h = zero_padding(h, mask)
        h = h.transpose(1, 2)  # (B, C, T): channels are the tokens
        h, _ = self.attn(h, h, h, need_weights=False)
        return self.dropout(h.transpose(1, 2))


class ConvModule(nn.Module):
    """LN -> pointwise conv (2d) -> GLU -> depthwise conv -> norm -> SiLU -> pointwise conv -> Dropout."""

    def __init__(self, dim: int, kernel_size: int, dropout: float, norm: str = "layer",
                 mask_padding: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"depthwise kernel size must be odd, got {kernel_size}")
        if norm not in ("layer", "batch"):
            raise ValueError(f"conv_norm must be 'layer' or 'batch', got {norm!r}")
        self.norm_kind = norm
        self.mask_padding = mask_padding
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.conv_norm = nn.LayerNorm(dim) if norm == "layer" else nn.BatchNorm1d(dim)
        self.pointwise_out = nn.Conv1d(dim, dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Residual update for x (B, T, C); padded frames are zeroed before the depthwise convolution."""
        h = self.norm(x).transpose(1, 2)  # (B, C, T)
        h = nn.functional.glu(self.pointwise_in(h), dim=1)
        if self.mask_padding:
            h = h * mask[:, None, :].to(h.dtype)
        h = self.depthwise(h)
        if self.norm_kind == "layer":
            h = self.conv_norm(h.transpose(1, 2)).transpose(1, 2)
        else:
            h = self.conv_norm(h)
        h = self.pointwise_out(nn.functional.silu(h))
        return self.dropout(h.transpose(1, 2))


class ConformerBlock(nn.Module):
    """One macaron conformer block: ½FFN, frame (+ channel) attention, convolution, ½FFN, LayerNorm."""

    def __init__(self, dim: int, heads: int, ff_expansion: int, kernel_size: int, dropout: float,
                 window: int | None, conv_norm: str = "layer", *, ff_hidden: int = 0, ff_shared: bool = False,
                 mask_padding: bool = True) -> None:
        super().__init__()
        self.ff_in = FeedForward(dim, ff_expansion, dropout, ff_hidden)
        self.frame_attention = FrameAttention(dim, heads, dropout)
        self.channel_attention = (ChannelAttention(dim, window, heads, dropout, mask_padding) if window else None)
        self.conv = ConvModule(dim, kernel_size, dropout, conv_norm, mask_padding)
        # ff_shared: the official block applies one feed-forward module in both macaron halves.
        self.ff_out = None if ff_shared else FeedForward(dim, ff_expansion, dropout, ff_hidden)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Map x (B, T, C) to (B, T, C); mask (B, T) is True on valid frames."""
        x = x + 0.5 * self.ff_in(x)
        x = x + self.frame_attention(x, mask)
        if self.channel_attention is not None:
            x = x + self.channel_attention(x, mask)
        x = x + self.conv(x, mask)
        x = x + 0.5 * (self.ff_in if self.ff_out is None else self.ff_out)(x)
        return self.norm(x)
